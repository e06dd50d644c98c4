"""What every labkit audio–text dataset shares: the item with ``audio`` in place of ``image``, and reading a file.

An item is the image–text item of :mod:`labkit.data.base` with one key swapped::

    {
        "audio":    FloatTensor (T,), a mono waveform in [-1, 1] at the dataset's sample rate, fixed length,
        "captions": list[str], at least one,
        "pair_id":  int, stable id of the clip,
        "topic":    int, -1 when the source has no topic labels,
        "saliency": None,
        "index":    int, the item's position in this dataset,
    }

:class:`labkit.data.collate.PairCollator` stacks ``audio`` into a (B, T) batch and :func:`labkit.train.fit` /
:func:`labkit.evaluate.embed_dataset` send it through ``model.encode_audio``. The spectrogram is computed by the
model (:class:`labkit.models.audio.LogMel`), not here: a batch of waveforms is one batched STFT on the training
device, and a dataset stays a plain container of clips.

Reading files (:func:`load_audio`): ``soundfile`` decodes WAV/FLAC/OGG; several channels are averaged to mono; a file
at another sample rate is **resampled** with ``soxr`` (through ``librosa.resample``, its "soxr_hq" mode), never
rejected; a missing file raises FileNotFoundError and an undecodable one :class:`DataFormatError`, both naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from .base import DataFormatError, ImageTextDataset, missing_file

__all__ = ["AudioTextDataset", "AudioTransform", "load_audio", "fit_length", "FixedLength", "AUDIO_EXTENSIONS"]

#: waveform (T,) float32 tensor -> tensor (what a model's ``encode_audio`` accepts, per item)
AudioTransform = Callable[[torch.Tensor], torch.Tensor]
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode an audio file to a mono float32 waveform (T,) at ``sample_rate``.

    Channels are averaged (a stereo file becomes mono); another rate is resampled with soxr (``librosa.resample``,
    ``res_type="soxr_hq"``). Raises FileNotFoundError (full path) when absent and :class:`DataFormatError` naming the
    file when it cannot be decoded or holds no samples.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise missing_file(path, "audio file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise DataFormatError(f"{path}: cannot decode audio (truncated, corrupt or not audio?): {exc}") from exc
    if data.shape[0] == 0:
        raise DataFormatError(f"{path}: the audio file holds no samples")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if int(rate) != int(sample_rate):
        import librosa

        wave = librosa.resample(wave, orig_sr=int(rate), target_sr=int(sample_rate), res_type="soxr_hq")
    return np.ascontiguousarray(wave, dtype=np.float32)


def fit_length(wave: np.ndarray | torch.Tensor, n_samples: int) -> torch.Tensor:
    """The first ``n_samples`` of a waveform, zero-padded at the end when it is shorter (float32 tensor)."""
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32) if not torch.is_tensor(wave) else wave).float()
    if x.ndim != 1:
        raise ValueError(f"wave must be 1-D (T,), got shape {tuple(x.shape)}")
    if len(x) >= n_samples:
        return x[:n_samples].contiguous()
    return torch.nn.functional.pad(x, (0, n_samples - len(x)))


class FixedLength:
    """Transform: a waveform cut or zero-padded to ``seconds`` at ``sample_rate`` (what a batch needs)."""

    def __init__(self, sample_rate: int, seconds: float):
        if int(sample_rate) < 1 or not float(seconds) > 0:
            raise ValueError(f"sample_rate must be >= 1 and seconds > 0, got {sample_rate!r}, {seconds!r}")
        self.sample_rate, self.seconds = int(sample_rate), float(seconds)
        self.n_samples = int(round(self.sample_rate * self.seconds))

    def __call__(self, wave: np.ndarray | torch.Tensor) -> torch.Tensor:
        return fit_length(wave, self.n_samples)

    def __repr__(self) -> str:
        return f"FixedLength(sample_rate={self.sample_rate}, seconds={self.seconds:g})"


class AudioTextDataset(ImageTextDataset):
    """Base class of labkit's audio–text datasets: items carry ``audio`` (a waveform) instead of ``image``.

    Subclasses implement ``__len__``, ``captions_of``, ``pair_id_of`` and ``_audio`` (and may override ``topic_of``);
    ``captions_flat()``, ``pair_ids`` and ``topics`` come from :class:`~labkit.data.base.ImageTextDataset`.
    """

    #: sample rate of the waveforms this dataset serves (Hz)
    sample_rate: int = 16000

    def __init__(self, transform: Optional[AudioTransform] = None) -> None:
        super().__init__(transform)

    def _audio(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def _image(self, i: int) -> torch.Tensor:  # an audio dataset has no image
        raise TypeError(f"{type(self).__name__} serves audio, not images (item key 'audio')")

    def __getitem__(self, i: int) -> dict:
        i = self._check_index(i)
        return {
            "audio": self._audio(i),
            "captions": list(self.captions_of(i)),
            "pair_id": int(self.pair_id_of(i)),
            "topic": int(self.topic_of(i)),
            "saliency": None,
            "index": i,
        }
