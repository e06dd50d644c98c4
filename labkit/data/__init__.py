"""labkit.data: the embedded procedural worlds and real-format loaders.

All datasets share :class:`ImageTextDataset` (items are dicts with ``image``,
``captions``, ``pair_id``, ``topic``, ``saliency``, ``index``; audio datasets,
:class:`AudioTextDataset`, carry ``audio`` instead of ``image``)::

    from labkit.data import make_world, make_sound_world, CocoCaptions, flickr30k, AudioCaps, Clotho
    world = make_world(n_pairs=2000, seed=0)             # world.train / .val / .test
    sounds = make_sound_world(n_clips=1000, seed=0)      # the same splits and item interface, with audio
    coco = CocoCaptions("coco/val2017", "coco/annotations/captions_val2017.json")
    f30k = flickr30k("data/flickr30k", split="test")
    image, text = load_mindthegap_coco500()              # real CLIP ViT-B/16 embeddings of 500 COCO pairs (shipped)
    sal = SaliconCaptions("coco/train2014", "coco/annotations/captions_train2014.json",
                          fixations_file="salicon/fixations_train2014.json", maps_root="salicon/maps/train")
    train = GazeRegularized(world.train, p=0.5)          # seed 003 eq. 2 with attention probability p
    clotho = Clotho("data/clotho", split="test")
    cc3m = ShardDataset("cc3m/{000000..000331}.tar", transform=preprocess, shuffle=True)   # webdataset, streamed
"""

from . import caption_styles_imbalance  # registers make_world(pairing="attributes_0" … "attributes_4")
from .audio import AudioTextDataset, FixedLength, load_audio
from .audio_captions import AudioCaps, Clotho
from .base import DataFormatError, ImageTextDataset, default_transform
from .coco import CocoCaptions
from .gaze import GazeRegularized, attention_mask, gaze_modulate
from .collate import PairCollator
from .groups import CaptionGroups, GroupTokenizer
from .karpathy import KarpathySplit, coco_karpathy, flickr8k, flickr30k
from .text_as_image import TextAsImage, TextImageLayout
from .mindthegap import load_mindthegap_coco500
from .salicon import SaliconCaptions, fixation_map, read_fixations
from .shards import MemoryPairs, ShardDataset, write_shards
from .world import (
    COLOURS,
    CAPTION_STYLES,
    PAIRINGS,
    SHAPES,
    TOPIC_NAMES,
    EmbeddedWorld,
    EmbeddedWorldDataset,
    make_world,
    register_caption_style,
)
from . import caption_styles  # noqa: E402,F401  (registers the "casual" style, seed 004's second world)
from .sound_world import SOUND_TOPIC_NAMES, SOURCE_NAMES, SoundWorld, SoundWorldDataset, make_sound_world

__all__ = [
    "DataFormatError",
    "ImageTextDataset",
    "default_transform",
    "EmbeddedWorld",
    "EmbeddedWorldDataset",
    "make_world",
    "SHAPES",
    "COLOURS",
    "TOPIC_NAMES",
    "PAIRINGS",
    "CAPTION_STYLES",
    "register_caption_style",
    "caption_styles_imbalance",
    "CocoCaptions",
    "PairCollator",
    "KarpathySplit",
    "coco_karpathy",
    "flickr30k",
    "flickr8k",
    "CaptionGroups",
    "GroupTokenizer",
    "TextAsImage",
    "TextImageLayout",
    "load_mindthegap_coco500",
    "SaliconCaptions",
    "read_fixations",
    "fixation_map",
    "GazeRegularized",
    "gaze_modulate",
    "attention_mask",
    "AudioTextDataset",
    "FixedLength",
    "load_audio",
    "AudioCaps",
    "Clotho",
    "SoundWorld",
    "SoundWorldDataset",
    "make_sound_world",
    "SOURCE_NAMES",
    "SOUND_TOPIC_NAMES",
    "ShardDataset",
    "MemoryPairs",
    "write_shards",
]
