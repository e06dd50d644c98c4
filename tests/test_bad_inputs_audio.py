"""Bad inputs for the audio–text loaders (AudioCaps, Clotho), one parametrised table in the style of
tests/test_bad_inputs.py: each case fails with a clear error naming the file and, for a caption file, the line and the
field — or takes the loaders' documented fallback (a stereo file is averaged to mono, a file at another rate is
resampled with soxr, ``missing="skip"`` drops and counts absent clips), which the case then checks by value.
Fixtures are written by the tests in the real formats (CSV captions, WAV / FLAC audio via soundfile)."""

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from labkit.data import AudioCaps, Clotho, DataFormatError

SR = 16000
AC_HEADER = ["audiocap_id", "youtube_id", "start_time", "caption"]
CL_HEADER = ["file_name", *[f"caption_{k}" for k in range(1, 6)]]


def tone(freq, seconds, sr=SR):
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_csv(path: Path, header, rows, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def audiocaps(tmp, rows=None, header=AC_HEADER, audio=None):
    """An AudioCaps test split: test.csv and audio/test/<youtube_id>_<start>.wav for each clip (``audio``: name →
    (waveform, rate) overrides; a value of None leaves that file out; bytes write them as they are)."""
    root = tmp / "audiocaps"
    rows = rows if rows is not None else [[11, "clipA", 30, "a dog barks"], [12, "clipA", 30, "barking"],
                                          [21, "clipB", 0, "a bell rings"]]
    write_csv(root / "test.csv", header, rows)
    files = {"clipA_30.wav": (tone(440, 1.0), SR), "clipB_0.wav": (tone(880, 1.0), SR), **(audio or {})}
    (root / "audio" / "test").mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if content is None:
            continue
        if isinstance(content, bytes):
            (root / "audio" / "test" / name).write_bytes(content)
        else:
            sf.write(root / "audio" / "test" / name, *content)
    return root


def clotho(tmp, rows=None, header=CL_HEADER, audio=None):
    """A Clotho evaluation split: clotho_captions_evaluation.csv and evaluation/<file_name> (as for audiocaps)."""
    root = tmp / "clotho"
    rows = rows if rows is not None else [["rain.wav", *[f"rain falls {k}" for k in range(5)]],
                                          ["birds.wav", *[f"birds sing {k}" for k in range(5)]]]
    write_csv(root / "clotho_captions_evaluation.csv", header, rows)
    files = {"rain.wav": (tone(2000, 1.0, 44100), 44100), "birds.wav": (tone(3000, 1.0, 44100), 44100),
             **(audio or {})}
    (root / "evaluation").mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if content is None:
            continue
        if isinstance(content, bytes):
            (root / "evaluation" / name).write_bytes(content)
        else:
            sf.write(root / "evaluation" / name, *content)
    return root


def dominant_hz(y, sr=SR):
    return float(np.fft.rfftfreq(len(y), 1 / sr)[np.abs(np.fft.rfft(y)).argmax()])


def wav_with_no_samples():
    import io

    buf = io.BytesIO()
    sf.write(buf, np.zeros(0, dtype=np.float32), SR, format="WAV")
    return buf.getvalue()


NOT_AUDIO = b"this is a text file that someone saved as .wav\n" * 4
TRUNCATED_HEADER = b"RIFF\x24\x00\x00\x00WAVEfmt "

# ============================================================================ the cases

CASES = {}


def case(name, error, match):
    def register(fn):
        CASES[name] = (fn, error, match)
        return fn
    return register


# ---------------------------------------------------------------- AudioCaps: the caption CSV


@case("audiocaps/missing column", DataFormatError, r"test\.csv: missing column\(s\) \['caption'\]")
def _(tmp):
    AudioCaps(audiocaps(tmp, rows=[[1, "clipA", 30]], header=AC_HEADER[:3]), split="test")


@case("audiocaps/empty caption", DataFormatError, r"test\.csv, line 3: field 'caption' is empty")
def _(tmp):
    AudioCaps(audiocaps(tmp, rows=[[1, "clipA", 30, "a dog"], [2, "clipA", 30, "   "]]), split="test")


@case("audiocaps/id not an integer", DataFormatError, r"test\.csv, line 2: field 'audiocap_id' is not an integer")
def _(tmp):
    AudioCaps(audiocaps(tmp, rows=[["x1", "clipA", 30, "a dog"]]), split="test")


@case("audiocaps/more cells than columns", DataFormatError, r"test\.csv, line 2: more cells than the header")
def _(tmp):
    AudioCaps(audiocaps(tmp, rows=[[1, "clipA", 30, "a dog", "extra"]]), split="test")


@case("audiocaps/caption file not UTF-8", DataFormatError, r"test\.csv: not UTF-8 text")
def _(tmp):
    root = audiocaps(tmp)
    (root / "test.csv").write_bytes(",".join(AC_HEADER).encode() + b"\n1,clipA,30,caf\xe9 \xff\xfe noise\n")
    AudioCaps(root, split="test")


@case("audiocaps/caption file missing", FileNotFoundError, r"test\.csv")
def _(tmp):
    root = audiocaps(tmp)
    (root / "test.csv").unlink()
    AudioCaps(root, split="test")


@case("audiocaps/filename template names an unknown field", ValueError, r"filename template '\{ytid\}' names a field")
def _(tmp):
    AudioCaps(audiocaps(tmp), split="test", filename="{ytid}")


# ---------------------------------------------------------------- AudioCaps: the audio files


@case("audiocaps/missing audio file", FileNotFoundError, r"clipB_0\.wav")
def _(tmp):
    AudioCaps(audiocaps(tmp, audio={"clipB_0.wav": None}), split="test")


@case("audiocaps/missing audio file, missing='skip': dropped and counted (documented fallback)", None, None)
def _(tmp):
    ds = AudioCaps(audiocaps(tmp, audio={"clipB_0.wav": None}), split="test", missing="skip", clip_seconds=1.0)
    assert len(ds) == 1 and ds.n_missing == 1 and ds.missing_files[0].endswith("clipB_0.wav")
    assert ds.captions_of(0) == ["a dog barks", "barking"]


@case("audiocaps/corrupt wav (not audio)", DataFormatError, r"clipA_30\.wav: cannot decode audio")
def _(tmp):
    AudioCaps(audiocaps(tmp, audio={"clipA_30.wav": NOT_AUDIO}), split="test")[0]


@case("audiocaps/zero-byte wav", DataFormatError, r"clipB_0\.wav: cannot decode audio")
def _(tmp):
    AudioCaps(audiocaps(tmp, audio={"clipB_0.wav": b""}), split="test")[1]


@case("audiocaps/wav with no samples", DataFormatError, r"clipB_0\.wav: the audio file holds no samples")
def _(tmp):
    AudioCaps(audiocaps(tmp, audio={"clipB_0.wav": wav_with_no_samples()}), split="test")[1]


@case("audiocaps/wrong sample rate: resampled with soxr (documented fallback)", None, None)
def _(tmp):
    ds = AudioCaps(audiocaps(tmp, audio={"clipB_0.wav": (tone(880, 1.0, 22050), 22050)}), split="test",
                   clip_seconds=1.0)
    wave = ds[1]["audio"].numpy()
    assert wave.shape == (SR,) and dominant_hz(wave) == pytest.approx(880, abs=2)
    assert np.abs(wave[200:-200]).max() == pytest.approx(0.5, abs=0.02)  # the amplitude survives resampling


@case("audiocaps/stereo: averaged to mono (documented fallback)", None, None)
def _(tmp):
    left, right = tone(440, 1.0), tone(1320, 1.0)
    ds = AudioCaps(audiocaps(tmp, audio={"clipA_30.wav": (np.stack([left, right], axis=1), SR)}), split="test",
                   clip_seconds=1.0)
    np.testing.assert_allclose(ds[0]["audio"].numpy(), (left + right) / 2, atol=1e-4)  # 16-bit PCM round-off


# ---------------------------------------------------------------- Clotho: the caption CSV


@case("clotho/missing column", DataFormatError, r"clotho_captions_evaluation\.csv: missing column\(s\) \['caption_5'\]")
def _(tmp):
    Clotho(clotho(tmp, rows=[["rain.wav", "a", "b", "c", "d"]], header=CL_HEADER[:5]), split="test")


@case("clotho/empty caption", DataFormatError, r"clotho_captions_evaluation\.csv, line 3: field 'caption_2' is empty")
def _(tmp):
    rows = [["rain.wav", *"abcde"], ["birds.wav", "a", "", "c", "d", "e"]]
    Clotho(clotho(tmp, rows=rows), split="test")


@case("clotho/empty file name", DataFormatError, r"clotho_captions_evaluation\.csv, line 2: field 'file_name' is empty")
def _(tmp):
    Clotho(clotho(tmp, rows=[["", *"abcde"]]), split="test")


@case("clotho/no rows", DataFormatError, r"clotho_captions_evaluation\.csv: no rows")
def _(tmp):
    Clotho(clotho(tmp, rows=[]), split="test")


@case("clotho/unknown split", ValueError, r"split must be one of .*'evaluation'.* got 'eval'")
def _(tmp):
    Clotho(clotho(tmp), split="eval")


@case("clotho/unknown missing policy", ValueError, r"missing must be one of \('error', 'skip'\), got 'warn'")
def _(tmp):
    Clotho(clotho(tmp), split="test", missing="warn")


# ---------------------------------------------------------------- Clotho: the audio files


@case("clotho/missing audio file", FileNotFoundError, r"evaluation/birds\.wav")
def _(tmp):
    Clotho(clotho(tmp, audio={"birds.wav": None}), split="test")


@case("clotho/corrupt wav (cut header)", DataFormatError, r"rain\.wav: cannot decode audio")
def _(tmp):
    Clotho(clotho(tmp, audio={"rain.wav": TRUNCATED_HEADER}), split="test")[0]


@case("clotho/wrong sample rate and stereo: resampled and averaged (documented fallback)", None, None)
def _(tmp):
    left, right = tone(3000, 1.0, 48000), 0.0 * tone(3000, 1.0, 48000)
    ds = Clotho(clotho(tmp, audio={"birds.wav": (np.stack([left, right], axis=1), 48000)}), split="test",
                clip_seconds=1.0)
    wave = ds[1]["audio"].numpy()
    assert wave.shape == (SR,) and dominant_hz(wave) == pytest.approx(3000, abs=2)
    assert np.abs(wave[200:-200]).max() == pytest.approx(0.25, abs=0.02)  # mean of a 0.5 tone and silence


@pytest.mark.parametrize("name", list(CASES))
def test_bad_audio_input(name, tmp_path):
    fn, error, match = CASES[name]
    if error is None:
        fn(tmp_path)
        return
    with pytest.raises(error, match=match):
        fn(tmp_path)
