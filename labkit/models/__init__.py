"""labkit.models: every model exposes open_clip's interface — ``encode_image(x, normalize=True)``,
``encode_text(tokens, normalize=True)``, a ``logit_scale`` parameter — and comes as a :class:`ClipBundle`
(model, preprocess, tokenizer), so :func:`labkit.train.fit`, the metrics and the plots work with any of them.

    clip        ``create_model(name, pretrained=None, checkpoint=None)``: any open_clip name, plus labkit's tiny CPU
                configs shipped as JSON in ``labkit/models/configs/`` (registered with open_clip on import)
    base        ``DualEncoder``: the ``forward`` (open_clip's output dict) that labkit's own models share
    backbones   ``ResidualCNN``: the small ResNet (torchvision's BasicBlock) that seeds 002 and 003 build on
    two_stream  seed 001's two-stream CNN + GRU (§3.3, scaled to a CPU)
    single_network  seed 002's one CNN for images and captions written as images (§3.2)
    staged      seed 004's staged model: single-modality views of a CLIP's towers and the stage-3 linear map
    student_teacher  seed 003's student–teacher network (§2.2, Fig. 2): ResNet / LSTM students, FC teachers
    audio       seed 000's CLAP side: ``create_audio_model(name)`` — a log-mel front end (librosa's filterbank), a
                CNN audio tower (tiny, or CNN14's layout) and open_clip's text tower; ``encode_audio`` in place of
                ``encode_image`` (configs in ``labkit/models/configs/audio/``)
"""

from .audio import AudioBundle, AudioTextModel, ConvAudioEncoder, LogMel, create_audio_model, list_audio_models
from .backbones import ResidualCNN
from .base import DualEncoder
from .clip import CONFIG_DIR, ClipBundle, create_model, embed_dim_of, encode, list_labkit_models
from .single_network import SingleNetwork, create_single_network
from .staged import LinearMap, ModalityView, StagedModel, tower_parameters
from .student_teacher import StudentTeacher, create_student_teacher
from .two_stream import TwoStreamModel, create_two_stream

__all__ = ["ClipBundle", "create_model", "list_labkit_models", "encode", "embed_dim_of", "CONFIG_DIR", "DualEncoder",
           "TwoStreamModel", "create_two_stream", "SingleNetwork", "ResidualCNN", "create_single_network",
           "StagedModel", "ModalityView", "LinearMap", "tower_parameters", "StudentTeacher", "create_student_teacher",
           "AudioBundle", "AudioTextModel", "ConvAudioEncoder", "LogMel", "create_audio_model", "list_audio_models"]
