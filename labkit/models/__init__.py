"""labkit.models: every model exposes open_clip's interface — ``encode_image(x, normalize=True)``,
``encode_text(tokens, normalize=True)``, a ``logit_scale`` parameter — and comes as a :class:`ClipBundle`
(model, preprocess, tokenizer), so :func:`labkit.train.fit`, the metrics and the plots work with any of them.

    clip        ``create_model(name, pretrained=None, checkpoint=None)``: any open_clip name, plus labkit's tiny CPU
                configs shipped as JSON in ``labkit/models/configs/`` (registered with open_clip on import)
    two_stream  seed 001's two-stream CNN + GRU (§3.3, scaled to a CPU)
    audio       seed 000's CLAP side: ``create_audio_model(name)`` — a log-mel front end (librosa's filterbank), a
                CNN audio tower (tiny, or CNN14's layout) and open_clip's text tower; ``encode_audio`` in place of
                ``encode_image`` (configs in ``labkit/models/configs/audio/``)
"""

from .clip import CONFIG_DIR, ClipBundle, create_model, embed_dim_of, encode, list_labkit_models
from .audio import AudioBundle, AudioTextModel, ConvAudioEncoder, LogMel, create_audio_model, list_audio_models
from .two_stream import TwoStreamModel, create_two_stream

__all__ = ["ClipBundle", "create_model", "list_labkit_models", "encode", "embed_dim_of", "CONFIG_DIR",
           "TwoStreamModel", "create_two_stream", "AudioBundle", "AudioTextModel", "ConvAudioEncoder", "LogMel",
           "create_audio_model", "list_audio_models"]
