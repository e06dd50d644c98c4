"""AudioCaps and Clotho loaders on fixtures the tests write in the real formats (CSV + WAV/FLAC), including a missing
file, a stereo file, a file at another sample rate, a corrupt file and malformed CSVs."""

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from labkit.data import AudioCaps, Clotho, DataFormatError, PairCollator, load_audio
from labkit.data.audio import FixedLength, fit_length

SR = 16000


def _tone(freq: float, seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return y if channels == 1 else np.stack([y, 0.5 * y], axis=1)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _dominant_hz(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[spec.argmax()])


@pytest.fixture
def audiocaps_root(tmp_path):
    """test.csv with 2 clips × several captions; one WAV at 16 kHz, one stereo FLAC at 22.05 kHz."""
    root = tmp_path / "audiocaps"
    (root / "audio" / "test").mkdir(parents=True)
    _write_csv(root / "test.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], [
        [103, "abcDEF12345", 30, "A dog barks twice"],
        [101, "abcDEF12345", 30, "Barking from a dog"],
        [205, "--xyz_98765", 0, "A car passes by"],
        [102, "abcDEF12345", 30, "Dog barking outdoors"],
        [206, "--xyz_98765", 0, "Traffic noise and an engine"],
    ])
    sf.write(root / "audio" / "test" / "abcDEF12345_30.wav", _tone(440, 1.0, SR), SR)
    sf.write(root / "audio" / "test" / "--xyz_98765_0.flac", _tone(1000, 2.0, 22050, channels=2), 22050)
    return root


def test_audiocaps_groups_captions_by_clip(audiocaps_root):
    ds = AudioCaps(audiocaps_root, split="test", clip_seconds=1.5)
    assert len(ds) == 2 and ds.n_missing == 0
    assert ds.captions_of(0) == ["A dog barks twice", "Barking from a dog", "Dog barking outdoors"]
    assert ds.pair_ids.tolist() == [101, 205]  # the clip's smallest audiocap_id
    texts, owner = ds.captions_flat()
    assert len(texts) == 5 and owner.tolist() == [0, 0, 0, 1, 1]
    item = ds[0]
    assert set(item) == {"audio", "captions", "pair_id", "topic", "saliency", "index"}
    assert item["audio"].shape == (24000,) and item["audio"].dtype == torch.float32
    assert torch.all(item["audio"][16000:] == 0)  # 1 s of audio, zero-padded to 1.5 s
    assert _dominant_hz(item["audio"][:16000].numpy(), SR) == pytest.approx(440, abs=2)
    batch = PairCollator(lambda caps: torch.zeros(len(caps), 3, dtype=torch.long))([ds[0], ds[1]])
    assert batch["audio"].shape == (2, 24000)


def test_stereo_and_wrong_rate_files_are_downmixed_and_resampled(audiocaps_root):
    """The 22.05 kHz stereo FLAC comes back mono at 16 kHz (soxr), its 1 kHz tone where it was."""
    ds = AudioCaps(audiocaps_root, split="test", clip_seconds=1.5)
    wave = ds[1]["audio"].numpy()
    assert wave.shape == (24000,)  # 2 s resampled to 32000 samples, cut to 1.5 s
    assert _dominant_hz(wave, SR) == pytest.approx(1000, abs=2)
    raw = load_audio(ds.audio_path(1), SR)
    assert raw.ndim == 1 and len(raw) == 32000
    # the downmix is the mean of the channels: (0.5 + 0.25) / 2 = 0.375 peak
    assert np.abs(raw[2000:-2000]).max() == pytest.approx(0.375, rel=0.02)


def test_missing_audio_file_error_or_skip(audiocaps_root):
    (audiocaps_root / "audio" / "test" / "abcDEF12345_30.wav").unlink()
    with pytest.raises(FileNotFoundError, match="abcDEF12345_30") as err:
        AudioCaps(audiocaps_root, split="test")
    assert err.value.filename.endswith("abcDEF12345_30.wav")
    ds = AudioCaps(audiocaps_root, split="test", missing="skip")
    assert len(ds) == 1 and ds.n_missing == 1 and ds.pair_ids.tolist() == [205]
    assert ds.missing_files[0].endswith("abcDEF12345_30.wav")


def test_filename_template_and_audio_dir(tmp_path, audiocaps_root):
    other = tmp_path / "flat"
    other.mkdir()
    sf.write(other / "Y--xyz_98765.wav", _tone(300, 0.5, SR), SR)
    sf.write(other / "YabcDEF12345.wav", _tone(300, 0.5, SR), SR)
    ds = AudioCaps(audiocaps_root, split="test", audio_dir=other, filename="Y{youtube_id}", clip_seconds=0.5)
    assert len(ds) == 2 and ds.audio_path(0).name == "YabcDEF12345.wav"
    with pytest.raises(ValueError, match="nope"):
        AudioCaps(audiocaps_root, split="test", filename="{nope}")


@pytest.mark.parametrize("rows, header, match", [
    ([[1, "a", 0, "x"]], ["audiocap_id", "youtube_id", "caption"], r"missing column.*start_time"),
    ([["one", "a", 0, "x"]], None, r"line 2: field 'audiocap_id'"),
    ([[1, "a", "noon", "x"]], None, r"line 2: field 'start_time'"),
    ([[1, "a", 0, "x"], [2, "b", 0, ""]], None, r"line 3: field 'caption' is empty"),
    ([[1, "", 0, "x"]], None, r"line 2: field 'youtube_id' is empty"),
    ([], None, "no captions"),
])
def test_malformed_audiocaps_csv_names_file_line_and_field(tmp_path, rows, header, match):
    root = tmp_path / "ac"
    (root / "audio" / "val").mkdir(parents=True)
    _write_csv(root / "val.csv", header or ["audiocap_id", "youtube_id", "start_time", "caption"], rows)
    with pytest.raises(DataFormatError, match=match) as err:
        AudioCaps(root, split="val")
    assert "val.csv" in str(err.value)


def test_audiocaps_missing_csv_and_bad_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.csv"):
        AudioCaps(tmp_path, split="train")
    with pytest.raises(ValueError, match="split"):
        AudioCaps(tmp_path, split="dev")


@pytest.fixture
def clotho_root(tmp_path):
    root = tmp_path / "clotho"
    (root / "evaluation").mkdir(parents=True)
    (root / "clotho_audio_files" / "development").mkdir(parents=True)
    header = ["file_name", *[f"caption_{k}" for k in range(1, 6)]]
    _write_csv(root / "clotho_captions_evaluation.csv", header, [
        ["rain on a roof.wav", *[f"rain caption {k}" for k in range(1, 6)]],
        ["birds, morning.wav", *[f"bird caption {k}" for k in range(1, 6)]],
    ])
    _write_csv(root / "clotho_captions_development.csv", header, [
        ["dev one.wav", *[f"dev caption {k}" for k in range(1, 6)]],
    ])
    sf.write(root / "evaluation" / "rain on a roof.wav", _tone(2000, 1.0, 44100), 44100)  # Clotho's rate
    sf.write(root / "evaluation" / "birds, morning.wav", _tone(3000, 0.5, 44100, channels=2), 44100)
    sf.write(root / "clotho_audio_files" / "development" / "dev one.wav", _tone(500, 0.5, SR), SR)
    return root


def test_clotho_reads_five_captions_and_resamples_44k(clotho_root):
    ds = Clotho(clotho_root, split="test", clip_seconds=1.0)
    assert len(ds) == 2 and ds.split == "evaluation"
    assert ds.captions_of(1) == [f"bird caption {k}" for k in range(1, 6)]
    assert ds.pair_ids.tolist() == [2_000_000, 2_000_001]
    wave = ds[0]["audio"].numpy()
    assert wave.shape == (16000,) and _dominant_hz(wave, SR) == pytest.approx(2000, abs=2)
    stereo = ds[1]["audio"].numpy()
    assert np.all(stereo[8000:] == 0) and _dominant_hz(stereo[:8000], SR) == pytest.approx(3000, abs=4)
    dev = Clotho(clotho_root, split="development", clip_seconds=0.5)  # Clotho's own split name, nested folder
    assert len(dev) == 1 and dev.pair_ids.tolist() == [0] and dev.audio_dir.name == "development"


def test_clotho_missing_file_and_bad_rows(clotho_root):
    (clotho_root / "evaluation" / "birds, morning.wav").unlink()
    with pytest.raises(FileNotFoundError, match="birds, morning.wav"):
        Clotho(clotho_root, split="evaluation")
    assert len(Clotho(clotho_root, split="evaluation", missing="skip")) == 1
    header = ["file_name", "caption_1", "caption_2", "caption_3", "caption_4"]
    _write_csv(clotho_root / "clotho_captions_validation.csv", header, [["x.wav", "a", "b", "c", "d"]])
    with pytest.raises(DataFormatError, match=r"clotho_captions_validation.csv: missing column.*caption_5"):
        Clotho(clotho_root, split="val")
    header = ["file_name", *[f"caption_{k}" for k in range(1, 6)]]
    _write_csv(clotho_root / "clotho_captions_validation.csv", header, [["x.wav", "a", "b", "", "d", "e"]])
    with pytest.raises(DataFormatError, match=r"line 2: field 'caption_3' is empty"):
        Clotho(clotho_root, split="val")
    with pytest.raises(ValueError, match="missing"):
        Clotho(clotho_root, split="test", missing="ignore")


def test_corrupt_audio_file_is_a_data_format_error_naming_it(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    with pytest.raises(DataFormatError, match="broken.wav"):
        load_audio(bad, SR)
    with pytest.raises(FileNotFoundError, match="nothing.wav"):
        load_audio(tmp_path / "nothing.wav", SR)


def test_fit_length_and_fixed_length():
    assert fit_length(np.ones(5, dtype=np.float32), 3).tolist() == [1, 1, 1]
    assert fit_length(torch.ones(2), 4).tolist() == [1, 1, 0, 0]
    assert FixedLength(10, 0.5)(torch.ones(2)).shape == (5,)
    with pytest.raises(ValueError, match="1-D"):
        fit_length(np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match="seconds"):
        FixedLength(16000, 0)
