"""Real audio-captioning datasets: AudioCaps and Clotho, read from their own files.

AudioCaps (Kim et al., NAACL 2019; YouTube clips of AudioSet, 10 s)::

    root/
      train.csv  val.csv  test.csv          audiocap_id,youtube_id,start_time,caption   (one row per caption)
      audio/train/<youtube_id>_<start_time>.wav  (or .flac / .ogg; the name is a template, see ``filename``)
      audio/val/…  audio/test/…

Rows with the same ``youtube_id`` and ``start_time`` are one clip (the val / test sets have 5 captions per clip,
train 1); ``pair_id`` is the clip's smallest ``audiocap_id``.

Clotho (Drossos et al., ICASSP 2020; Freesound clips, 15–30 s, 44.1 kHz, 5 captions each)::

    root/
      clotho_captions_development.csv  clotho_captions_validation.csv  clotho_captions_evaluation.csv
                                        file_name,caption_1,caption_2,caption_3,caption_4,caption_5
      development/<file_name>  validation/<file_name>  evaluation/<file_name>
      (or clotho_audio_files/development/…)

labkit's split names map to Clotho's: train → development, val → validation, test → evaluation (Clotho's own names
work too). ``pair_id`` = 1,000,000 × split number (development 0, validation 1, evaluation 2) + the row's index.

Audio (both): decoded with soundfile, averaged to mono, **resampled** to ``sample_rate`` with soxr when a file has
another rate (:func:`labkit.data.audio.load_audio`), then cut / zero-padded to ``clip_seconds`` (the default
transform; pass ``transform`` to do otherwise). A missing audio file is found when the dataset is built:
``missing="error"`` (default) raises FileNotFoundError naming it (and counting the others); ``missing="skip"``
drops those clips and lists them in ``missing_files`` — AudioCaps' YouTube videos disappear over time, so real
copies usually need "skip". Malformed CSVs raise :class:`~labkit.data.base.DataFormatError` naming the file, the
line and the field.

(``aac-datasets`` 0.7 reads these layouts too, but it requires torchaudio — whose wheels carry C++ extensions built
for one torch release, not labkit's — plus Hugging Face ``datasets`` and ``py7zr``; the CSVs are simple enough for the
standard library, the audio for soundfile.)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

import torch

from .audio import AUDIO_EXTENSIONS, AudioTextDataset, AudioTransform, FixedLength, load_audio
from .base import DataFormatError, ListedPairs, missing_file

__all__ = ["AudioCaptionFiles", "AudioCaps", "Clotho", "AUDIOCAPS_FIELDS", "CLOTHO_FIELDS", "CLOTHO_SPLITS",
           "MISSING_POLICIES"]

AUDIOCAPS_FIELDS = ("audiocap_id", "youtube_id", "start_time", "caption")
CLOTHO_FIELDS = ("file_name", "caption_1", "caption_2", "caption_3", "caption_4", "caption_5")
CLOTHO_SPLITS = {"train": "development", "val": "validation", "test": "evaluation",
                 "development": "development", "validation": "validation", "evaluation": "evaluation"}
_CLOTHO_CODE = {"development": 0, "validation": 1, "evaluation": 2}
MISSING_POLICIES = ("error", "skip")


def _read_csv(path: Path, fields: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header, as (line number, row); checks that every field in ``fields`` is a column."""
    if not path.is_file():
        raise missing_file(path, "caption file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            absent = [f for f in fields if f not in header]
            if absent:
                raise DataFormatError(f"{path}: missing column(s) {absent} (header: {header})")
            rows = []
            for row in reader:
                if None in row:  # more cells than columns
                    raise DataFormatError(f"{path}, line {reader.line_num}: more cells than the header's "
                                          f"{len(header)} columns")
                rows.append((reader.line_num, row))
            return rows
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not UTF-8 text: {exc}") from exc
    except csv.Error as exc:
        raise DataFormatError(f"{path}: malformed CSV: {exc}") from exc


class AudioCaptionFiles(ListedPairs, AudioTextDataset):
    """Clips on disk with their captions: the shared machinery of :class:`AudioCaps` and :class:`Clotho`.

    Items: ``audio`` (the transform of the mono waveform at ``sample_rate``; default: cut / padded to
    ``clip_seconds``), ``captions``, ``pair_id``, ``topic`` = -1, ``saliency`` = None, ``index``.
    """

    def __init__(self, paths: Sequence[Path], captions: Sequence[list[str]], pair_ids: Sequence[int],
                 sample_rate: int, clip_seconds: float, transform: Optional[AudioTransform], missing: str,
                 source: str, split: str) -> None:
        if missing not in MISSING_POLICIES:
            raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
        super().__init__(transform if transform is not None else FixedLength(sample_rate, clip_seconds))
        self.sample_rate, self.clip_seconds = int(sample_rate), float(clip_seconds)
        self.source, self.split = source, split
        present = [p is not None and p.is_file() for p in paths]
        self.missing_files = [str(p) for p, ok in zip(paths, present) if not ok]
        if self.missing_files and missing == "error":
            first = self.missing_files[0]
            others = len(self.missing_files) - 1
            raise FileNotFoundError(2, f"{source} {split}: audio file not found"
                                       + (f" ({others} more missing; missing='skip' drops them)" if others else ""),
                                    first)
        self._paths = [p for p, ok in zip(paths, present) if ok]
        self._captions = [list(c) for c, ok in zip(captions, present) if ok]
        self._ids = [int(i) for i, ok in zip(pair_ids, present) if ok]

    @property
    def n_missing(self) -> int:
        return len(self.missing_files)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(split={self.split!r}, n={len(self)}, sample_rate={self.sample_rate}, "
                f"clip_seconds={self.clip_seconds:g}, n_missing={self.n_missing})")

    def audio_path(self, i: int) -> Path:
        return self._paths[i]

    def _audio(self, i: int) -> torch.Tensor:
        return self.transform(torch.from_numpy(load_audio(self._paths[i], self.sample_rate)))


def _find_audio(folder: Path, stem: str) -> Optional[Path]:
    """``folder/stem`` if it has an audio extension already, else the first ``folder/stem.<ext>`` that exists
    (``folder/stem.wav`` when none does, so the error names a plausible file)."""
    if Path(stem).suffix.lower() in AUDIO_EXTENSIONS:
        return folder / stem
    for ext in AUDIO_EXTENSIONS:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return folder / f"{stem}{AUDIO_EXTENSIONS[0]}"


class AudioCaps(AudioCaptionFiles):
    """One split of AudioCaps (layout in the module docstring).

    Args:
        root: folder holding ``<split>.csv`` and ``audio/<split>/``.
        split: "train", "val" or "test".
        sample_rate, clip_seconds: what the items hold (AudioCaps clips are 10 s).
        transform: waveform tensor (T,) at ``sample_rate`` -> what the model takes; default: cut / pad.
        audio_dir: folder of this split's audio files (default ``root/audio/<split>``).
        filename: the file's name without extension, a template over the CSV's fields
            (default ``"{youtube_id}_{start_time}"``, as aac-datasets writes them; e.g. ``"Y{youtube_id}"``).
        missing: "error" (default) or "skip" (see the module docstring).
    """

    def __init__(self, root: str | Path, split: str = "test", sample_rate: int = 16000, clip_seconds: float = 10.0,
                 transform: Optional[AudioTransform] = None, audio_dir: str | Path | None = None,
                 filename: str = "{youtube_id}_{start_time}", missing: str = "error") -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        root = Path(root)
        csv_path = root / f"{split}.csv"
        folder = Path(audio_dir) if audio_dir is not None else root / "audio" / split
        clips: dict[tuple[str, int], dict] = {}
        for line, row in _read_csv(csv_path, AUDIOCAPS_FIELDS):
            try:
                cap_id = int(row["audiocap_id"])
            except (TypeError, ValueError):
                raise DataFormatError(f"{csv_path}, line {line}: field 'audiocap_id' is not an integer: "
                                      f"{row['audiocap_id']!r}") from None
            try:
                start = int(float(row["start_time"]))
            except (TypeError, ValueError):
                raise DataFormatError(f"{csv_path}, line {line}: field 'start_time' is not a number: "
                                      f"{row['start_time']!r}") from None
            ytid = (row["youtube_id"] or "").strip()
            if not ytid:
                raise DataFormatError(f"{csv_path}, line {line}: field 'youtube_id' is empty")
            caption = (row["caption"] or "").strip()
            if not caption:
                raise DataFormatError(f"{csv_path}, line {line}: field 'caption' is empty")
            clip = clips.setdefault((ytid, start), {"ids": [], "captions": [], "row": row})
            clip["ids"].append(cap_id)
            clip["captions"].append(caption)
        if not clips:
            raise DataFormatError(f"{csv_path}: no captions")
        try:
            paths = [_find_audio(folder, filename.format(**{**c["row"], "start_time": s, "youtube_id": y}))
                     for (y, s), c in clips.items()]
        except (KeyError, IndexError) as exc:
            raise ValueError(f"filename template {filename!r} names a field that {csv_path} lacks: {exc}") from None
        super().__init__(paths, [c["captions"] for c in clips.values()], [min(c["ids"]) for c in clips.values()],
                         sample_rate, clip_seconds, transform, missing, "AudioCaps", split)
        self.root, self.csv_path, self.audio_dir = root, csv_path, folder


class Clotho(AudioCaptionFiles):
    """One split of Clotho (layout in the module docstring).

    Args:
        root: folder holding ``clotho_captions_<split>.csv`` and the ``<split>/`` audio folder.
        split: "train" / "val" / "test" (= development / validation / evaluation) or Clotho's own names.
        sample_rate: Clotho is 44.1 kHz; the default 16 kHz resamples on load (soxr).
        clip_seconds: clips are 15–30 s; the default keeps the first 30 s (zero-padded).
        transform, missing: as for :class:`AudioCaps`.
    """

    def __init__(self, root: str | Path, split: str = "test", sample_rate: int = 16000, clip_seconds: float = 30.0,
                 transform: Optional[AudioTransform] = None, audio_dir: str | Path | None = None,
                 missing: str = "error") -> None:
        if split not in CLOTHO_SPLITS:
            raise ValueError(f"split must be one of {sorted(CLOTHO_SPLITS)}, got {split!r}")
        name = CLOTHO_SPLITS[split]
        root = Path(root)
        csv_path = root / f"clotho_captions_{name}.csv"
        if audio_dir is not None:
            folder = Path(audio_dir)
        else:
            folder = next((d for d in (root / name, root / "clotho_audio_files" / name) if d.is_dir()), root / name)
        paths, captions, ids = [], [], []
        for k, (line, row) in enumerate(_read_csv(csv_path, CLOTHO_FIELDS)):
            fname = (row["file_name"] or "").strip()
            if not fname:
                raise DataFormatError(f"{csv_path}, line {line}: field 'file_name' is empty")
            caps = [(row[f] or "").strip() for f in CLOTHO_FIELDS[1:]]
            empty = [f for f, c in zip(CLOTHO_FIELDS[1:], caps) if not c]
            if empty:
                raise DataFormatError(f"{csv_path}, line {line}: field {empty[0]!r} is empty")
            paths.append(folder / fname)
            captions.append(caps)
            ids.append(1_000_000 * _CLOTHO_CODE[name] + k)
        if not paths:
            raise DataFormatError(f"{csv_path}: no rows")
        super().__init__(paths, captions, ids, sample_rate, clip_seconds, transform, missing, "Clotho", name)
        self.root, self.csv_path, self.audio_dir = root, csv_path, folder
