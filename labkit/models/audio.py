r"""An audio–text CLIP (a CLAP): a log-mel front end, a CNN audio tower, open_clip's text tower.

    bundle = create_audio_model("labkit-audio-tiny", seed=0)   # AudioBundle(model, preprocess, tokenizer, name, …)
    bundle.model.encode_audio(waveforms, normalize=True)        # (B, T) float waveforms at 16 kHz -> (B, D)
    bundle.model.encode_text(bundle.tokenizer(captions), normalize=True)
    bundle.model.logit_scale                                    # the text model's learned 1/τ (log)

The model exposes open_clip's interface with ``encode_audio`` in place of ``encode_image``, so
:func:`labkit.train.fit`, :func:`labkit.evaluate.embed_dataset`, :func:`labkit.losses.clip_loss`, the GRL term
(:func:`labkit.losses.grl_objective`), the metrics and the plots work unchanged.

Pieces
------
* :class:`LogMel` — waveform (B, T) → log-mel spectrogram (B, n_mels, frames) in dB. The mel filterbank is
  **librosa's** (``librosa.filters.mel``: Slaney mel scale, Slaney area normalisation), the STFT is ``torch.stft``
  with librosa's conventions (periodic Hann window, centred frames, zero padding), the power spectrum is
  :math:`|X|^2` and the log is ``librosa.power_to_db(S, ref=1, amin=1e-10, top_db=None)`` =
  :math:`10\log_{10}\max(S, 10^{-10})`. It equals ``librosa.power_to_db(librosa.feature.melspectrogram(...))`` to
  float32 round-off (tested). Normalisation is *not* part of it: the tower standardises the dB values with fixed
  constants (``db_mean``, ``db_std``, :class:`ConvAudioEncoder`) — no data-dependent statistics, so an untrained
  model in eval mode already sees inputs of unit scale. (torchaudio's ``MelSpectrogram`` defaults differ: HTK mel
  scale, no filter normalisation, reflect padding — swapping it in changes the numbers, not the method.
  torchaudio has no build for labkit's torch here, so librosa it is.)
* :class:`ConvAudioEncoder` — the tower on the log-mel "image" (PANNs' CNN family, Kong et al. 2020): blocks of
  [3×3 conv → BatchNorm → ReLU] × ``convs_per_block`` → 2×2 average pooling; then the mean over frequency, the
  max + mean over time (CNN14's pooling) and a two-layer projection to the embedding width. ``labkit-audio-tiny``:
  3 blocks of one conv (16/32/64 channels, ≈ 0.1 M parameters) for CPU; ``labkit-audio-cnn14``: CNN14's layout
  (6 blocks of two convs, 64 … 2048 channels, ≈ 80 M parameters) for a GPU.
* :class:`AudioTextModel` — the audio tower plus an open_clip text tower: the model is built by open_clip from the
  ``text_model`` config (``labkit-tiny`` by default) with its visual tower dropped, so for the same seed the text
  tower starts from exactly the weights the image–text CLIP of that config starts from (a paired comparison of
  the two worlds changes only the first tower).

Why the spectrogram lives in the model, not in the dataset: it is a fixed, parameter-free, batched transform that
runs on the training device (one STFT for the whole batch on a GPU), datasets stay plain waveform containers that any
front end can read, and the benchmark (``benchmarks/audio_frontend.py``) measures it as part of the step — on the CPU
here it is a few percent of a training step.

Configs are JSON files in ``labkit/models/configs/audio/`` (a sub-folder, so open_clip's registry of image–text
configs is not disturbed): ``{"text_model": "<open_clip or labkit config>", "audio_cfg": {...}}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.audio import FixedLength
from .clip import CONFIG_DIR, ClipBundle, create_model, embed_dim_of

__all__ = ["LogMel", "log_mel_spectrogram", "ConvAudioEncoder", "AudioTextModel", "AudioBundle", "create_audio_model",
           "list_audio_models", "audio_config", "count_parameters", "AUDIO_CONFIG_DIR"]

AUDIO_CONFIG_DIR = CONFIG_DIR / "audio"

#: audio_cfg keys and their defaults (a config may override any of them)
AUDIO_DEFAULTS: dict[str, Any] = {
    "sample_rate": 16000,
    "clip_seconds": 2.0,
    "n_fft": 512,
    "hop_length": 160,
    "n_mels": 64,
    "fmin": 50.0,
    "fmax": None,
    "db_mean": -55.0,
    "db_std": 20.0,
    "channels": [16, 32, 64],
    "convs_per_block": 1,
    "dropout": 0.0,
}


def log_mel_spectrogram(wave: torch.Tensor, mel_basis: torch.Tensor, n_fft: int, hop_length: int,
                        window: torch.Tensor | None = None, amin: float = 1e-10) -> torch.Tensor:
    r"""The log-mel spectrogram in dB, :math:`10\log_{10}\max(M\,|\mathrm{STFT}(x)|^2,\ a_{\min})`: a periodic Hann
    window of ``n_fft`` samples (default), hop ``hop_length``, centred frames with zero padding, the filterbank
    ``mel_basis`` (M: (n_mels, 1 + n_fft // 2)). (T,) → (n_mels, frames), (B, T) → (B, n_mels, frames); float32 even
    under autocast. What :class:`LogMel` computes with librosa's filterbank."""
    if window is None:
        window = torch.hann_window(n_fft, periodic=True, device=wave.device)
    with torch.autocast(device_type=wave.device.type, enabled=False):
        spec = torch.stft(wave.float(), n_fft, hop_length=hop_length, window=window, center=True,
                          pad_mode="constant", return_complex=True)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(mel_basis, power)
        return 10.0 * torch.log10(mel.clamp_min(amin))


class LogMel(nn.Module):
    r"""Log-mel spectrogram in dB: (B, T) or (T,) waveform → (B, n_mels, 1 + T // hop_length).

    :math:`10\log_{10}\max(M\,|\mathrm{STFT}(x)|^2,\ a_{\min})` with ``M`` librosa's mel filterbank; equals
    ``librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr, n_fft, hop_length, n_mels, fmin, fmax), ref=1.0,
    amin=amin, top_db=None)``. Runs in float32 even under autocast.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop_length: int = 160, n_mels: int = 64,
                 fmin: float = 0.0, fmax: float | None = None, amin: float = 1e-10):
        super().__init__()
        import librosa

        if n_fft < 2 or hop_length < 1 or n_mels < 1 or sample_rate < 1:
            raise ValueError(f"LogMel: need n_fft >= 2, hop_length >= 1, n_mels >= 1, sample_rate >= 1; got "
                             f"{n_fft}, {hop_length}, {n_mels}, {sample_rate}")
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = int(sample_rate), int(n_fft), int(hop_length), int(n_mels)
        self.fmin, self.fmax, self.amin = float(fmin), fmax, float(amin)
        basis = librosa.filters.mel(sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels, fmin=self.fmin,
                                    fmax=fmax, htk=False, norm="slaney")
        self.register_buffer("mel_basis", torch.from_numpy(basis).float(), persistent=False)  # (n_mels, 1 + n_fft/2)
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim not in (1, 2):
            raise ValueError(f"LogMel expects a waveform (T,) or a batch (B, T), got shape {tuple(wave.shape)}")
        return log_mel_spectrogram(wave, self.mel_basis, self.n_fft, self.hop_length, self.window, self.amin)

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"n_mels={self.n_mels}, fmin={self.fmin:g}, fmax={self.fmax}")


class _ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, convs: int):
        super().__init__()
        layers: list[nn.Module] = []
        for k in range(convs):
            layers += [nn.Conv2d(c_in if k == 0 else c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.convs(x))


class ConvAudioEncoder(nn.Module):
    """Waveform → embedding: :class:`LogMel`, fixed standardisation ``(dB − db_mean) / db_std``, conv blocks, pooling
    (mean over frequency, max + mean over time), a two-layer projection to ``embed_dim`` (see the module docstring).
    """

    def __init__(self, embed_dim: int, sample_rate: int = 16000, n_fft: int = 512, hop_length: int = 160,
                 n_mels: int = 64, fmin: float = 50.0, fmax: float | None = None, db_mean: float = -55.0,
                 db_std: float = 20.0, channels: Sequence[int] = (16, 32, 64), convs_per_block: int = 1,
                 dropout: float = 0.0, **_unused: Any):
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or any(c < 1 for c in channels) or int(convs_per_block) < 1 or int(embed_dim) < 1:
            raise ValueError(f"ConvAudioEncoder: need embed_dim >= 1, positive channels and convs_per_block >= 1; "
                             f"got {embed_dim}, {channels}, {convs_per_block}")
        if not db_std > 0:
            raise ValueError(f"ConvAudioEncoder: db_std must be > 0, got {db_std}")
        self.frontend = LogMel(sample_rate, n_fft, hop_length, n_mels, fmin, fmax)
        self.db_mean, self.db_std = float(db_mean), float(db_std)
        blocks, c_in = [], 1
        for c in channels:
            blocks.append(_ConvBlock(c_in, c, int(convs_per_block)))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(float(dropout))
        self.head = nn.Sequential(nn.Linear(c_in, c_in), nn.ReLU(inplace=True), nn.Linear(c_in, int(embed_dim)))
        self.embed_dim = int(embed_dim)

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    def features(self, logmel: torch.Tensor) -> torch.Tensor:
        """The tower after the front end: log-mel dB (B, n_mels, frames) → embedding (B, embed_dim), unnormalised."""
        x = ((logmel - self.db_mean) / self.db_std).unsqueeze(1)  # (B, 1, mels, frames)
        x = self.blocks(x)
        x = x.mean(dim=2)  # over frequency: (B, C, frames')
        x = x.amax(dim=2) + x.mean(dim=2)  # over time, CNN14's pooling: (B, C)
        return self.head(self.dropout(x))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.features(self.frontend(wave))


class AudioTextModel(nn.Module):
    """A CLAP: :class:`ConvAudioEncoder` + an open_clip text tower (a CLIP with its visual tower removed).

    ``encode_audio(waveforms (B, T), normalize=True)``, ``encode_text(tokens, normalize=True)`` and ``logit_scale``
    (the text model's parameter) — what :func:`labkit.train.fit` needs for batches with an ``audio`` key.
    """

    def __init__(self, audio: ConvAudioEncoder, text: nn.Module):
        super().__init__()
        if not hasattr(text, "encode_text") or not hasattr(text, "logit_scale"):
            raise ValueError("text must be an open_clip model with encode_text and logit_scale")
        if getattr(text, "visual", None) is not None:
            text.visual = None  # the image tower is not used: drop its weights
        self.audio = audio
        self.text = text

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.text.logit_scale

    def encode_audio(self, audio: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        if audio.ndim != 2:
            raise ValueError(f"encode_audio expects waveforms (B, T), got shape {tuple(audio.shape)}")
        x = self.audio(audio)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        return self.text.encode_text(tokens, normalize=normalize)

    def forward(self, audio: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.encode_audio(audio), self.encode_text(tokens), self.logit_scale.exp()


@dataclass
class AudioBundle(ClipBundle):
    """A :class:`~labkit.models.clip.ClipBundle` for audio: ``preprocess`` cuts / pads a waveform to
    ``clip_seconds`` at ``sample_rate`` (what a batch of clips needs)."""

    sample_rate: int = 16000
    clip_seconds: float = 2.0

    @property
    def image_size(self) -> int:  # pragma: no cover - an audio model has none
        raise AttributeError("an audio-text model has no image_size; see sample_rate and clip_seconds")


def list_audio_models() -> list[str]:
    """Names of the audio–text configs shipped with labkit."""
    return sorted(p.stem for p in AUDIO_CONFIG_DIR.glob("*.json"))


def audio_config(name: str) -> dict[str, Any]:
    """The config ``{"text_model": …, "audio_cfg": {…}}`` of a shipped audio model (defaults filled in)."""
    path = AUDIO_CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"audio model name {name!r} is not a labkit audio config ({', '.join(list_audio_models())})")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    for key in ("text_model", "audio_cfg"):
        if key not in cfg:
            raise ValueError(f"{path}: missing field {key!r}")
    unknown = set(cfg["audio_cfg"]) - set(AUDIO_DEFAULTS)
    if unknown:
        raise ValueError(f"{path}: unknown audio_cfg field(s) {sorted(unknown)}")
    return {"text_model": cfg["text_model"], "audio_cfg": {**AUDIO_DEFAULTS, **cfg["audio_cfg"]}}


def create_audio_model(name: str = "labkit-audio-tiny", checkpoint: str | os.PathLike | None = None,
                       device: str | torch.device = "cpu", seed: int | None = None, text_model: str | None = None,
                       **audio_overrides: Any) -> AudioBundle:
    """Build an :class:`AudioTextModel` from a shipped config.

    Args:
        name: an audio config in ``labkit/models/configs/audio/`` (``labkit-audio-tiny``, ``labkit-audio-cnn14``).
        checkpoint: a local checkpoint (a labkit training checkpoint or a plain state dict, under ``state_dict``
            or not); loaded with ``weights_only=True``.
        device: where to put the model.
        seed: seeds the initial weights: the text tower exactly as ``create_model(text_model, seed=seed)`` builds
            it, the audio tower from its own stream.
        text_model: override the config's text tower (any labkit or open_clip config name, random init).
        audio_overrides: override ``audio_cfg`` entries (``clip_seconds=1.5``, ``channels=[8, 16]``, …).
    """
    cfg = audio_config(name)
    unknown = set(audio_overrides) - set(AUDIO_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown audio_cfg override(s) {sorted(unknown)}; known: {sorted(AUDIO_DEFAULTS)}")
    audio_cfg = {**cfg["audio_cfg"], **{k: v for k, v in audio_overrides.items() if v is not None}}
    text_name = text_model or cfg["text_model"]
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint file not found: {checkpoint}")
    text = create_model(text_name, seed=seed)  # open_clip builds it (and its tokenizer) from the config
    embed_dim = embed_dim_of(text_name)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(int(seed) * 1_000_003 + 0xA0D10)
        audio = ConvAudioEncoder(embed_dim, **audio_cfg)
    model = AudioTextModel(audio, text.model)
    if checkpoint is not None:
        from ..io import load_checkpoint

        state = load_checkpoint(checkpoint)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        state = {k.removeprefix("module."): v for k, v in state.items()}
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"cannot load checkpoint {checkpoint} into audio model {name!r}: {exc}") from exc
    model.to(device)
    return AudioBundle(model=model, preprocess=FixedLength(audio_cfg["sample_rate"], audio_cfg["clip_seconds"]),
                       tokenizer=text.tokenizer, name=name, sample_rate=int(audio_cfg["sample_rate"]),
                       clip_seconds=float(audio_cfg["clip_seconds"]))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)

