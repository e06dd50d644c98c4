"""The embedded sound world: seeded, procedurally synthesised audio clips with AudioCaps / Clotho-style captions.

The audio counterpart of :mod:`labkit.data.world`: every notebook can train a tiny CLAP on it on a laptop CPU.
Each clip is built in three small steps::

    sample_sound_scene()   -> a structured scene: topic, background noise, 1-3 sound events in time order
    render_clips()         -> 16 kHz waveforms (vectorised numpy over all repetitions of a source at once)
    literal_sound_captions()       -> paraphrases of what is heard, in time order     (pairing="literal")
    complementary_sound_captions() -> "field notes" about the place, naming things
                                      that are NOT heard                               (pairing="complementary")

A sound **event** has a source (a dog, a siren, running water, ... 14 in all), a pitch (low or high: the
fundamental or the centre frequency of that source, an octave or more apart), a count (impulsive sources repeat 1-3
times: "a dog barks twice") or a loudness envelope (continuous sources: steady, getting louder, fading away; a car
approaches, passes by or drives away), a loudness (loud or quiet) and a place in time: events never overlap, so
"a dog barks twice, then a car passes by" is literally true of the waveform. Repetitions of an event are separated
by short silences (60-110 ms), events by longer ones (300-450 ms) — what the tests use to count events and read their
order off the signal's energy envelope.

Topics (street, kitchen, nature, music, home) prefer some sources (a street has cars, sirens, horns) and their
own background noise (traffic rumble, a fridge's hum, wind, room tone, air conditioning), so the topic is audible
and nameable, but the preferences overlap and are only preferences.

The same seed gives byte-identical waveforms (int16 PCM), scenes, topics and splits in both pairing modes; only
the text differs. Usage::

    world = make_sound_world(n_clips=1000, seed=0, clip_seconds=2.0)
    item = world.train[0]          # dict: audio (T,) float32, captions, pair_id, topic, saliency=None, index
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .audio import AudioTextDataset, AudioTransform
from .generated import WorldSplitView, WorldSplits
from .world import _splits

__all__ = [
    "SoundWorld",
    "SoundWorldDataset",
    "make_sound_world",
    "sample_sound_scene",
    "render_clips",
    "literal_sound_captions",
    "complementary_sound_captions",
    "SOURCES",
    "SOURCE_NAMES",
    "SOUND_TOPICS",
    "SOUND_TOPIC_NAMES",
    "SOUND_PAIRINGS",
    "SAMPLE_RATE",
    "COUNT_WORDS",
    "PITCH_WORDS",
    "LOUDNESS_WORDS",
    "ENVELOPE_WORDS",
    "REPEAT_GAP",
    "EVENT_GAP",
]

SAMPLE_RATE = 16000
SOUND_PAIRINGS: tuple[str, ...] = ("literal", "complementary")

# =========================================================================== vocabularies


@dataclass(frozen=True)
class Source:
    """A sound source: how it is synthesised and how captions talk about it.

    ``kind`` is "impulsive" (short units that repeat 1-3 times) or "continuous" (one longer sound with a loudness
    envelope). ``pitch_hz`` = (low, high) fundamental or centre frequency. ``unit`` = seconds of one repetition
    (impulsive) or (min, max) seconds of the sound (continuous). Caption words: ``agents`` ("a dog"), ``verb``
    ("barks"), ``gerund`` ("barking"), ``sound`` (singular, plural noun: "bark", "barks"), ``emit`` ("lets out"), and
    for continuous sources the envelopes it can have.
    """

    name: str
    kind: str
    pitch_hz: tuple[float, float]
    unit: tuple[float, float]
    agents: tuple[str, ...]
    verb: str
    gerund: str
    sound: tuple[str, str]
    emit: str = ""
    envelopes: tuple[str, ...] = ()
    level: float = 1.0  # peak gain factor (noise bursts have a high crest factor: they get more, to sound as loud)


SOURCES: tuple[Source, ...] = (
    Source("dog", "impulsive", (300.0, 640.0), (0.13, 0.13), ("a dog",), "barks", "barking", ("bark", "barks"),
           "lets out"),
    Source("bird", "impulsive", (1800.0, 3800.0), (0.10, 0.10), ("a bird", "a songbird"), "chirps", "chirping",
           ("chirp", "chirps"), "gives"),
    Source("horn", "impulsive", (220.0, 470.0), (0.20, 0.20), ("a horn", "a truck horn"), "honks", "honking",
           ("honk", "honks"), "gives"),
    Source("knock", "impulsive", (160.0, 480.0), (0.07, 0.07), ("someone at the door",), "knocks", "knocking",
           ("knock", "knocks"), "makes"),
    Source("bell", "impulsive", (520.0, 1250.0), (0.26, 0.26), ("a bell", "a hand bell"), "rings", "ringing",
           ("chime", "chimes"), "gives"),
    Source("beep", "impulsive", (700.0, 1900.0), (0.12, 0.12), ("an alarm", "a timer"), "beeps", "beeping",
           ("beep", "beeps"), "gives"),
    Source("piano", "impulsive", (131.0, 523.0), (0.26, 0.26), ("a piano",), "is played", "being played",
           ("note", "notes"), "plays"),
    Source("drum", "impulsive", (60.0, 170.0), (0.16, 0.16), ("a drum",), "is hit", "being hit",
           ("beat", "beats"), "gives"),
    Source("chop", "impulsive", (900.0, 2700.0), (0.06, 0.06), ("a knife",), "chops", "chopping",
           ("chop", "chops"), "makes", level=1.7),
    Source("clap", "impulsive", (700.0, 2100.0), (0.06, 0.06), ("someone", "a person"), "claps", "clapping",
           ("clap", "claps"), "gives", level=1.7),
    Source("car", "continuous", (55.0, 115.0), (0.55, 0.85), ("a car",), "drives", "driving",
           ("rumble", "rumbles"), envelopes=("rising", "passing", "falling")),
    Source("siren", "continuous", (620.0, 1300.0), (0.55, 0.85), ("a siren",), "wails", "wailing",
           ("wail", "wails"), envelopes=("steady", "rising", "falling")),
    Source("water", "continuous", (500.0, 1600.0), (0.55, 0.9), ("water",), "runs", "running",
           ("rush", "rushes"), envelopes=("steady", "rising", "falling")),
    Source("kettle", "continuous", (1500.0, 3000.0), (0.55, 0.85), ("a kettle",), "whistles", "whistling",
           ("whistle", "whistles"), envelopes=("steady", "rising")),
)
SOURCE_NAMES: tuple[str, ...] = tuple(s.name for s in SOURCES)
_SOURCE = {s.name: s for s in SOURCES}

#: count -> adverbs ("barks twice") and numerals ("two barks"); every caption that states a count uses one of them
COUNT_WORDS: dict[int, dict[str, tuple[str, ...]]] = {
    1: {"adverb": ("once",), "numeral": ("a single", "one")},
    2: {"adverb": ("twice", "two times"), "numeral": ("two",)},
    3: {"adverb": ("three times",), "numeral": ("three",)},
}
PITCH_WORDS: dict[str, tuple[str, ...]] = {"low": ("low-pitched", "deep", "low"),
                                           "high": ("high-pitched", "shrill", "high")}
#: adjectives (before a sound noun) and adverbs (after a verb) of the two loudness levels of impulsive events
LOUDNESS_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "loud": {"adjective": ("loud",), "adverb": ("loudly",)},
    "quiet": {"adjective": ("faint", "soft"), "adverb": ("softly", "faintly")},
}
#: how a continuous event's loudness envelope is said, after a finite verb / after a gerund
ENVELOPE_WORDS: dict[str, tuple[str, ...]] = {
    "steady": ("", " steadily", " continuously"),
    "rising": (", getting louder", ", growing louder"),
    "falling": (", fading away", ", getting quieter"),
}
#: a car's envelope is its motion: approaching (louder), passing (louder then quieter), driving away (quieter)
CAR_MOTION: dict[str, dict[str, tuple[str, ...]]] = {
    "rising": {"finite": ("approaches", "drives closer"), "gerund": ("approaching", "driving closer")},
    "passing": {"finite": ("passes by", "drives past"), "gerund": ("passing by", "driving past")},
    "falling": {"finite": ("drives away", "drives off into the distance"), "gerund": ("driving away",)},
}


@dataclass(frozen=True)
class SoundTopic:
    """A topic: which sources it prefers, its background noise, and how texts talk about it."""

    name: str
    sources: tuple[str, ...]  # preferred sources
    background: str  # how a caption names the background noise
    noise: tuple[float, float, tuple[float, ...], float]  # (spectral slope α of 1/f^α, low-pass Hz, hum Hz, wind AM Hz)
    places: tuple[str, ...]  # "in a kitchen"
    nouns: tuple[str, ...]  # "a kitchen"
    things: tuple[str, ...]  # typical things of the place, never heard


SOUND_TOPICS: tuple[SoundTopic, ...] = (
    SoundTopic("street", ("car", "siren", "horn", "dog"), "traffic noise", (1.5, 1000.0, (), 0.0),
               ("on a busy street", "in the city", "by a road"), ("street", "city road", "downtown avenue"),
               ("taxis", "pedestrians", "traffic lights", "a bus stop", "a crosswalk", "lamp posts")),
    SoundTopic("kitchen", ("kettle", "water", "chop", "beep"), "a humming fridge", (1.0, 6000.0, (100.0, 200.0, 300.0), 0.0),
               ("in a kitchen", "at the stove", "in a restaurant kitchen"), ("kitchen", "home kitchen", "cafe kitchen"),
               ("a frying pan", "a recipe book", "a cutting board", "an oven", "wooden spoons", "an apron")),
    SoundTopic("nature", ("bird", "water", "dog"), "wind", (1.0, 1500.0, (), 0.6),
               ("in a forest", "outdoors in a park", "in the woods"), ("forest", "park", "woodland"),
               ("pine trees", "hikers", "mushrooms", "a trail", "a fox", "a meadow")),
    SoundTopic("music", ("piano", "drum", "clap", "bell"), "tape hiss", (0.5, 7500.0, (), 0.0),
               ("in a music room", "in a studio", "at a rehearsal"), ("music room", "studio", "rehearsal room"),
               ("an audience", "a stage", "a guitarist", "microphones", "sheet music", "a concert hall")),
    SoundTopic("home", ("knock", "dog", "beep", "bell"), "air conditioning", (1.5, 2500.0, (), 0.0),
               ("in a house", "indoors", "in a living room"), ("house", "flat", "living room"),
               ("a sofa", "a cat", "a staircase", "a window", "a carpet", "the neighbours")),
)
SOUND_TOPIC_NAMES: tuple[str, ...] = tuple(t.name for t in SOUND_TOPICS)

N_EVENT_WEIGHTS = (0.35, 0.45, 0.20)  # P(1..3 events); fewer when they do not fit in the clip
P_TOPIC_SOURCE = 0.75  # P(source drawn from the topic's preferred ones)
P_TOPIC_BACKGROUND = 0.8  # P(background noise of the topic's own kind)
P_LOUD = 0.6
REPEAT_GAP = (0.06, 0.11)  # seconds of silence between repetitions of one event
EVENT_GAP = (0.30, 0.45)  # seconds between two events (longer than any repetition gap)
LEAD = (0.04, 0.12)  # seconds before the first event
TAIL = 0.05  # seconds kept free at the end
PITCH_JITTER = 0.06  # relative, on the source's low/high pitch
GAIN = {"loud": 0.5, "quiet": 0.16}  # peak amplitude of an event (about 10 dB apart)
BACKGROUND_RMS = (0.002, 0.006)
RELEASE = 0.012  # seconds of linear fade at the end of every unit (units end in true silence)
ATTACK = 0.004
RENDER_CHUNK = 256  # clips per background chunk and units per synthesis chunk (bounds memory)
MIN_CLIP_SECONDS = 1.0


# =========================================================================== scenes

def _event_duration(src: Source, count: int, unit: float, gap: float) -> float:
    return count * unit + (count - 1) * gap if src.kind == "impulsive" else unit


def sample_sound_scene(rng: random.Random, clip_seconds: float) -> dict:
    """Sample one scene: topic, background noise, 1-3 non-overlapping events in time order.

    Each event: ``source``, ``kind``, ``pitch`` ("low"/"high"), ``f0`` (Hz), ``count`` (repetitions; 1 for
    continuous), ``loudness`` ("loud"/"quiet"), ``envelope`` (continuous: steady/rising/falling/passing; impulsive:
    None), ``onsets`` (seconds, one per repetition), ``unit`` (seconds of one repetition, or of the whole sound),
    ``start``/``end`` (seconds).
    """
    topic_id = rng.randrange(len(SOUND_TOPICS))
    topic = SOUND_TOPICS[topic_id]
    bg_topic = topic_id if rng.random() < P_TOPIC_BACKGROUND else rng.randrange(len(SOUND_TOPICS))
    n_target = rng.choices(range(1, 4), weights=N_EVENT_WEIGHTS)[0]
    limit = clip_seconds - TAIL
    t = rng.uniform(*LEAD)
    events: list[dict] = []
    used: set[str] = set()
    for k in range(n_target):
        names = [s for s in topic.sources if s not in used] if rng.random() < P_TOPIC_SOURCE else []
        names = names or [s for s in SOURCE_NAMES if s not in used]
        src = _SOURCE[rng.choice(names)]
        start = t + (rng.uniform(*EVENT_GAP) if events else 0.0)
        pitch = rng.choice(("low", "high"))
        f0 = src.pitch_hz[pitch == "high"] * (1.0 + rng.uniform(-PITCH_JITTER, PITCH_JITTER))
        loudness = "loud" if rng.random() < P_LOUD else "quiet"
        if src.kind == "impulsive":
            unit = src.unit[0] * rng.uniform(0.92, 1.08)
            gap = rng.uniform(*REPEAT_GAP)
            count = rng.randint(1, 3)
            while count > 1 and start + _event_duration(src, count, unit, gap) > limit:
                count -= 1
            envelope = None
        else:
            unit = rng.uniform(*src.unit)
            gap, count = 0.0, 1
            envelope = rng.choice(src.envelopes)
            unit = min(unit, max(src.unit[0], limit - start))
        duration = _event_duration(src, count, unit, gap)
        if start + duration > limit:
            if events:
                break
            raise ValueError(f"clip_seconds={clip_seconds} is too short for a {src.name} event")  # pragma: no cover
        onsets = [start + r * (unit + gap) for r in range(count)]
        events.append({"source": src.name, "kind": src.kind, "pitch": pitch, "f0": f0, "count": count,
                       "loudness": loudness, "envelope": envelope, "onsets": onsets, "unit": unit,
                       "start": start, "end": start + duration})
        used.add(src.name)
        t = start + duration
    # spread the free time: shift everything by a random part of what is left at the end
    shift = rng.uniform(0.0, max(0.0, limit - t) * 0.6)
    for e in events:
        e["onsets"] = [o + shift for o in e["onsets"]]
        e["start"] += shift
        e["end"] += shift
    return {
        "topic": topic_id,
        "topic_name": topic.name,
        "background": SOUND_TOPICS[bg_topic].background,
        "background_topic": bg_topic,
        "background_rms": rng.uniform(*BACKGROUND_RMS),
        "events": events,
    }


# =========================================================================== synthesis

def _envelope_ar(t: np.ndarray, length: np.ndarray, decay: float | np.ndarray) -> np.ndarray:
    """Attack (ATTACK s, linear), exponential decay with time constant ``decay`` s, linear release to exactly 0 at
    ``length`` (RELEASE s); 0 after. ``t`` (1, L), ``length`` (n, 1)."""
    att = np.clip(t / ATTACK, 0.0, 1.0)
    rel = np.clip((length - t) / RELEASE, 0.0, 1.0)
    return att * np.exp(-t / decay) * rel


def _shape(t: np.ndarray, length: np.ndarray, envelope: np.ndarray) -> np.ndarray:
    """Loudness envelope of continuous sounds over x = t / length: steady 1, rising 0.1→1, falling 1→0.1,
    passing (rises to the middle, then falls), each with 20 ms fades at both ends. ``envelope`` (n, 1) of codes
    0 steady, 1 rising, 2 falling, 3 passing."""
    x = np.clip(t / length, 0.0, 1.0)
    ramp = np.where(envelope == 2, 1.0 - x, x)  # falling is rising backwards
    out = np.where(envelope == 3, 0.1 + 0.9 * np.sin(np.pi * x) ** 2, 0.1 + 0.9 * ramp ** 1.5)
    out = np.where(envelope == 0, 1.0, out)
    fade = np.clip(t / 0.02, 0.0, 1.0) * np.clip((length - t) / 0.02, 0.0, 1.0)
    return (out * fade).astype(np.float32)


def _band_noise(noise: np.ndarray, centre: np.ndarray, t: np.ndarray, width: int) -> np.ndarray:
    """Noise concentrated around ``centre`` Hz: white noise low-passed by a moving average of ``width`` samples
    (a cumulative-sum difference, vectorised), then shifted up by a carrier at ``centre``."""
    c = np.cumsum(noise, axis=1)
    low = np.empty_like(noise)
    low[:, :width] = c[:, :width] / width
    low[:, width:] = (c[:, width:] - c[:, :-width]) / width
    return low * np.cos(2 * np.pi * centre * t)


def _harmonics(phase: np.ndarray, amps: Sequence[float]) -> np.ndarray:
    return sum(a * np.sin((k + 1) * phase) for k, a in enumerate(amps))


_NOISY = frozenset({"dog", "knock", "drum", "chop", "clap", "car", "water", "kettle"})


def _synth(name: str, t: np.ndarray, length: np.ndarray, f0: np.ndarray, envelope: np.ndarray,
           noise: Optional[np.ndarray]) -> np.ndarray:
    """Waveforms (n, L) of n units of source ``name``: all arguments broadcast over units (rows) and time (columns).
    Continuous sources get their loudness envelope here; every unit ends in silence at ``length``."""
    two_pi = np.float32(2 * np.pi)
    if name == "dog":  # harmonic bark with a falling pitch and a breathy noise part
        phase = two_pi * f0 * (t - 0.3 * t ** 2 / (2 * length))
        w = _harmonics(phase, (1.0, 0.7, 0.5, 0.35, 0.2, 0.1)) + 0.6 * _band_noise(noise, 2.0 * f0, t, 8)
        return w * _envelope_ar(t, length, 0.08)
    if name == "bird":  # fast upward sweep, f0 -> 1.6 f0
        phase = two_pi * f0 * (t + 0.6 * t ** 2 / (2 * length))
        return np.sin(phase) * np.sin(np.pi * np.clip(t / length, 0, 1)) ** 2
    if name == "horn":  # odd harmonics (square-ish), flat
        phase = two_pi * f0 * t
        return _harmonics(phase, (1.0, 0.0, 0.33, 0.0, 0.2, 0.0, 0.14)) * _envelope_ar(t, length, 10.0)
    if name == "knock":  # damped resonance plus a click
        click = _band_noise(noise, 2.0 * f0, t, 24) * np.exp(-t / 0.004)
        return (np.sin(two_pi * f0 * t) * np.exp(-t / 0.025) + 0.3 * click) * _envelope_ar(t, length, 10.0)
    if name == "bell":  # inharmonic partials, slow decay
        w = sum(a * np.sin(two_pi * r * f0 * t) for r, a in ((1.0, 1.0), (2.76, 0.5), (5.40, 0.25)))
        return w * _envelope_ar(t, length, 0.3)
    if name == "beep":  # pure tone
        return np.sin(two_pi * f0 * t) * _envelope_ar(t, length, 10.0)
    if name == "piano":  # harmonic tone with 1/k^1.5 partials, decaying
        w = _harmonics(two_pi * f0 * t, tuple(1.0 / (k + 1) ** 1.5 for k in range(8)))
        return w * _envelope_ar(t, length, 0.25)
    if name == "drum":  # pitch drop 2 f0 -> f0 plus a noise thump
        phase = two_pi * f0 * (t + 0.02 * (1.0 - np.exp(-t / 0.02)))
        w = np.sin(phase) + 0.3 * _band_noise(noise, 2.0 * f0, t, 16) * np.exp(-t / 0.02)
        return w * _envelope_ar(t, length, 0.12)
    if name in ("chop", "clap"):  # noise bursts around f0
        tau = 0.02 if name == "chop" else 0.025
        return _band_noise(noise, f0, t, 6 if name == "chop" else 4) * _envelope_ar(t, length, tau)
    if name == "car":  # engine harmonics with a Doppler drift, plus low rumble noise
        phase = two_pi * f0 * (t - 0.08 * t ** 2 / (2 * length))
        w = _harmonics(phase, (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15)) + 0.8 * _band_noise(noise, 2.0 * f0, t, 64)
        return w * _shape(t, length, envelope)
    if name == "siren":  # slow frequency modulation around f0
        phase = two_pi * f0 * (t - 0.25 / (two_pi * 2.5) * np.cos(two_pi * 2.5 * t))
        return _harmonics(phase, (1.0, 0.4, 0.2)) * _shape(t, length, envelope)
    if name == "water":  # band noise with a bubbling tremolo
        w = _band_noise(noise, f0, t, 10) * (1.0 + 0.25 * np.sin(two_pi * 7.0 * t))
        return w * _shape(t, length, envelope)
    if name == "kettle":  # whistle rising slightly, with breath noise
        phase = two_pi * f0 * (t + 0.15 * t ** 2 / (2 * length))
        w = np.sin(phase) + 0.3 * _band_noise(noise, f0, t, 12)
        return w * _shape(t, length, envelope)
    raise ValueError(f"unknown sound source {name!r}")


_ENVELOPE_CODE = {None: 0, "steady": 0, "rising": 1, "falling": 2, "passing": 3}


def _units(scenes: Sequence[dict], sr: int) -> dict[str, dict[str, np.ndarray]]:
    """Every repetition of every event, grouped by source: clip index, onset sample, length, f0, gain, envelope."""
    rows: dict[str, list[tuple]] = {name: [] for name in SOURCE_NAMES}
    for i, sc in enumerate(scenes):
        for e in sc["events"]:
            for onset in e["onsets"]:
                rows[e["source"]].append((i, int(round(onset * sr)), int(round(e["unit"] * sr)), e["f0"],
                                          GAIN[e["loudness"]] * _SOURCE[e["source"]].level,
                                          _ENVELOPE_CODE[e["envelope"]]))
    out = {}
    for name, r in rows.items():
        if r:
            a = np.array(r, dtype=np.float64)
            out[name] = {"clip": a[:, 0].astype(np.int64), "onset": a[:, 1].astype(np.int64),
                         "length": a[:, 2].astype(np.int64), "f0": a[:, 3], "gain": a[:, 4],
                         "envelope": a[:, 5].astype(np.int64)}
    return out


def _backgrounds(scenes: Sequence[dict], n_samples: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Background noise (n, T) float64: white noise shaped in the frequency domain to 1/f^α below a low-pass
    corner, plus mains-like hum partials and slow wind-like amplitude modulation where the noise kind has them;
    scaled to each scene's RMS."""
    n = len(scenes)
    f = np.maximum(np.fft.rfftfreq(n_samples, 1.0 / sr), 20.0)
    t = (np.arange(n_samples) / sr).astype(np.float32)
    out = np.empty((n, n_samples), dtype=np.float32)
    kinds = np.array([sc["background_topic"] for sc in scenes])
    for k, topic in enumerate(SOUND_TOPICS):
        idx = np.flatnonzero(kinds == k)
        if len(idx) == 0:
            continue
        alpha, lowpass, hum, am = topic.noise
        gain = f ** (-alpha / 2.0) / np.sqrt(1.0 + (f / lowpass) ** 4)
        spec = np.fft.rfft(rng.standard_normal((len(idx), n_samples), dtype=np.float32), axis=1)
        x = np.fft.irfft(spec * gain.astype(np.float32), n=n_samples, axis=1)
        x /= x.std(axis=1, keepdims=True)
        if hum:
            phases = rng.uniform(0, 2 * np.pi, (len(idx), len(hum)))
            x += sum(0.7 / (j + 1) * np.sin(2 * np.pi * h * t + phases[:, j:j + 1]) for j, h in enumerate(hum))
        if am:
            rate = am * rng.uniform(0.6, 1.4, (len(idx), 1))
            x *= 1.0 + 0.5 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi, (len(idx), 1)))
        x /= np.sqrt((x ** 2).mean(axis=1, keepdims=True))
        out[idx] = x * np.array([scenes[i]["background_rms"] for i in idx])[:, None]
    return out


def render_clips(scenes: Sequence[dict], clip_seconds: float, rng: np.random.Generator,
                 sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Render scenes to int16 PCM waveforms (n, T), T = round(clip_seconds · sample_rate).

    Vectorised: the background of a chunk of clips in one FFT, then every repetition of one source across all clips
    at once as an (n_units, L) array, peak-normalised, scaled by its loudness and added at its onset (units never
    overlap, so the scatter is a plain fancy-index add).
    """
    n_samples = int(round(clip_seconds * sample_rate))
    audio = np.empty((len(scenes), n_samples), dtype=np.float32)
    for start in range(0, len(scenes), RENDER_CHUNK):
        audio[start:start + RENDER_CHUNK] = _backgrounds(scenes[start:start + RENDER_CHUNK], n_samples, sample_rate, rng)
    flat = audio.reshape(-1)
    for name, u in _units(scenes, sample_rate).items():
        for s in range(0, len(u["clip"]), RENDER_CHUNK):
            c = {k: v[s:s + RENDER_CHUNK] for k, v in u.items()}
            width = int(c["length"].max())
            t = (np.arange(width, dtype=np.float32) / sample_rate)[None, :]
            length = (c["length"] / sample_rate).astype(np.float32)[:, None]
            noise = rng.standard_normal((len(c["clip"]), width), dtype=np.float32) if name in _NOISY else None
            wave = _synth(name, t, length, c["f0"].astype(np.float32)[:, None], c["envelope"][:, None], noise)
            keep = t < length
            wave *= keep
            wave *= (c["gain"] / np.maximum(np.abs(wave).max(axis=1), 1e-9)).astype(np.float32)[:, None]
            pos = c["onset"][:, None] + np.arange(width)[None, :]
            keep &= pos < n_samples
            flat[(c["clip"][:, None] * n_samples + pos)[keep]] += wave[keep]
    np.clip(audio, -1.0, 32767 / 32768, out=audio)
    return np.rint(audio * 32768).astype(np.int16)


# =========================================================================== captions: literal

def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _finish(text: str, rng: random.Random) -> str:
    """AudioCaps / Clotho surface: capitalised, sometimes with a full stop (Clotho has them, AudioCaps rarely)."""
    text = " ".join(text.split())
    text = text[0].upper() + text[1:]
    return text + "." if rng.random() < 0.4 else text


def _counted(e: dict, rng: random.Random, p_loud: float, p_pitch: float) -> str:
    """'two loud deep barks', 'a single chime' (a numeral, optional loudness and pitch, the sound noun)."""
    src = _SOURCE[e["source"]]
    words = [rng.choice(COUNT_WORDS[e["count"]]["numeral"])]
    if rng.random() < p_loud:
        words.append(rng.choice(LOUDNESS_WORDS[e["loudness"]]["adjective"]))
    if rng.random() < p_pitch:
        words.append(rng.choice(PITCH_WORDS[e["pitch"]]))
    words.append(src.sound[e["count"] > 1])
    return " ".join(words)


def _finite(e: dict, rng: random.Random) -> str:
    """The event as a clause with a finite verb: 'a dog barks twice', 'a dog lets out two deep barks',
    'a car passes by', 'a siren wails, getting louder'."""
    src = _SOURCE[e["source"]]
    agent = rng.choice(src.agents)
    if src.kind == "impulsive":
        if rng.random() < 0.4:
            return f"{agent} {src.emit} {_counted(e, rng, 0.4, 0.6)}"
        count = rng.choice(COUNT_WORDS[e["count"]]["adverb"]) if rng.random() < 0.85 else ""
        loud = " " + rng.choice(LOUDNESS_WORDS[e["loudness"]]["adverb"]) if count and rng.random() < 0.3 else ""
        return f"{agent} {src.verb} {count}{loud}"
    if src.name == "car":
        return f"{agent} {rng.choice(CAR_MOTION[e['envelope']]['finite'])}"
    if rng.random() < 0.4:
        return (f"the {rng.choice(PITCH_WORDS[e['pitch']])} {src.sound[0]} of {agent} can be heard"
                f"{rng.choice(ENVELOPE_WORDS[e['envelope']])}")
    return f"{agent} {src.verb}{rng.choice(ENVELOPE_WORDS[e['envelope']])}"


def _nominal(e: dict, rng: random.Random) -> str:
    """The event as a noun phrase (after 'followed by', in lists): 'a dog barking twice', 'two deep barks from a
    dog', 'a car passing by', 'the shrill wail of a siren getting louder'."""
    src = _SOURCE[e["source"]]
    agent = rng.choice(src.agents)
    if src.kind == "impulsive":
        if rng.random() < 0.45:
            return f"{_counted(e, rng, 0.4, 0.6)} from {agent}"
        count = " " + rng.choice(COUNT_WORDS[e["count"]]["adverb"]) if rng.random() < 0.85 else ""
        return f"{agent} {src.gerund}{count}"
    car = src.name == "car"
    motion = " " + rng.choice(CAR_MOTION[e["envelope"]]["gerund"]) if car else ""
    envelope = "" if car else rng.choice(ENVELOPE_WORDS[e["envelope"]]).lstrip(",")
    if rng.random() < 0.45:
        return f"the {rng.choice(PITCH_WORDS[e['pitch']])} {src.sound[0]} of {agent}{motion}{envelope}"
    return f"{agent}{motion or ' ' + src.gerund}{envelope}"


def _place(sc: dict, rng: random.Random) -> str:
    return rng.choice(SOUND_TOPICS[sc["topic"]].places)


def _background(sc: dict, rng: random.Random) -> str:
    return rng.choice((f"with {sc['background']} in the background", f"over {sc['background']}"))


def _lit_styles() -> tuple[Callable[[dict, random.Random], str], ...]:
    def then(sc, rng):  # AudioCaps: "A dog barks twice, then a car passes by"
        ev = sc["events"]
        conn = rng.choice((", then ", " and then ", " then "))
        return conn.join(_finite(e, rng) for e in ev)

    def followed(sc, rng):  # "A dog barks twice followed by a car passing by"
        ev = sc["events"]
        text = _finite(ev[0], rng)
        for e in ev[1:]:
            text += rng.choice((" followed by ", ", followed by ")) + _nominal(e, rng)
        return text

    def first_then(sc, rng):  # "First ..., then ..., and finally ..."
        ev = sc["events"]
        if len(ev) == 1:
            return f"{_place(sc, rng)}, {_finite(ev[0], rng)}"
        parts = [f"first {_finite(ev[0], rng)}"] + [_finite(e, rng) for e in ev[1:]]
        if len(parts) == 3:
            return f"{parts[0]}, then {parts[1]}, and finally {parts[2]}"
        return f"{parts[0]}, then {parts[1]}"

    def order_words(sc, rng):  # "A siren wails before a dog barks" / "A dog barks after a siren wails"
        ev = sc["events"]
        if len(ev) == 2:
            if rng.random() < 0.5:
                return f"{_finite(ev[0], rng)} before {_finite(ev[1], rng)}"
            return f"{_finite(ev[1], rng)} after {_finite(ev[0], rng)}"
        return ", then ".join(_finite(e, rng) for e in ev) + " " + _background(sc, rng)

    def clotho_place(sc, rng):  # Clotho: "In a kitchen, a kettle whistles and then water runs steadily"
        ev = sc["events"]
        return f"{_place(sc, rng)}, " + " and then ".join(_finite(e, rng) for e in ev)

    def listing(sc, rng):  # "A bird chirping three times followed by water running"
        ev = sc["events"]
        text = _nominal(ev[0], rng)
        for e in ev[1:]:
            text += " followed by " + _nominal(e, rng)
        return text if rng.random() < 0.5 else f"{text} {_background(sc, rng)}"

    def sound_of(sc, rng):  # "The sound of a dog barking twice, then a car passing by"
        ev = sc["events"]
        return "the sound of " + ", then ".join(_nominal(e, rng) for e in ev)

    return then, followed, first_then, order_words, clotho_place, listing, sound_of


LITERAL_STYLES = _lit_styles()


def literal_sound_captions(scene: dict, rng: random.Random, n: int = 5) -> list[str]:
    """``n`` distinct paraphrases that are all true of the clip, naming its events in time order.

    Every stated count, pitch, loudness and envelope is the event's own; the order connectors are ", then",
    "and then", "followed by", "before", "first … then … and finally" (forward) and "after" (backward).
    """
    return _distinct(lambda style: style(scene, rng), LITERAL_STYLES, rng, n)


# =========================================================================== captions: complementary

MOODS = ("calm", "busy", "sunny", "rainy", "crowded", "peaceful", "chilly", "lively")
TIMES = ("in the morning", "at dusk", "at noon", "at night", "on a weekend", "this afternoon")


def _comp_styles() -> tuple[Callable[[dict, random.Random], str], ...]:
    def things(st, k):
        return st["things"][k]

    return (
        lambda st, rng: f"a recording made in a {st['mood']} {st['noun']} {st['time']}",
        lambda st, rng: f"{st['place']} {st['time']}, near {things(st, 0)} and {things(st, 1)}",
        lambda st, rng: f"a diary entry from a {st['noun']}: {things(st, 0)}, {things(st, 1)} and {things(st, 2)}",
        lambda st, rng: f"a {st['mood']} day {st['place']}, with {things(st, 2)} nearby",
        lambda st, rng: f"{st['place']}, somewhere between {things(st, 1)} and {things(st, 0)}",
        lambda st, rng: f"everyday life {st['place']} {st['time']}",
        lambda st, rng: f"a story about {things(st, 0)} {st['place']}",
        lambda st, rng: f"recorded {st['place']} on a {st['mood']} day",
    )


COMPLEMENTARY_STYLES = _comp_styles()


def complementary_sound_captions(scene: dict, rng: random.Random, n: int = 5) -> list[str]:
    """``n`` distinct 'field notes' about the clip's topic that name things NOT heard (the only shared signal is
    the topic), like a sound archive's description of where a recording was made."""
    t = SOUND_TOPICS[scene["topic"]]
    story = {"noun": rng.choice(t.nouns), "place": rng.choice(t.places), "things": rng.sample(t.things, 3),
             "mood": rng.choice(MOODS), "time": rng.choice(TIMES)}

    def write(style):
        story["place"] = rng.choice(t.places)
        return style(story, rng)

    return _distinct(write, COMPLEMENTARY_STYLES, rng, n)


def _distinct(make: Callable, styles: Sequence[Callable], rng: random.Random, n: int) -> list[str]:
    """Cycle through shuffled styles until ``n`` distinct captions exist."""
    order = list(styles)
    rng.shuffle(order)
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n and attempts < 40 * n + 40:
        text = _finish(make(order[attempts % len(order)]), rng)
        attempts += 1
        key = text.lower().rstrip(".")
        if key not in seen:
            seen.add(key)
            out.append(text)
    while len(out) < n:  # pragma: no cover - only for absurdly large n
        out.append(out[len(out) % max(1, len(out))])
    return out


SOUND_CAPTION_STYLES: dict[str, Callable[[dict, random.Random, int], list[str]]] = {
    "literal": literal_sound_captions,
    "complementary": complementary_sound_captions,
}


# =========================================================================== world + dataset

class SoundWorld(WorldSplits):
    """A generated sound world: arrays for all clips plus train/val/test datasets.

    Attributes: ``audio`` int16 (N, T) PCM at ``sample_rate``, ``captions`` list[list[str]], ``topics`` int64 (N,),
    ``topic_names``, ``scenes`` list[dict], ``split_indices`` {"train","val","test"} -> sorted int64 index arrays,
    ``pairing``, ``seed``, ``sample_rate``, ``clip_seconds``, ``n_captions``.
    """

    def __init__(self, *, audio, captions, topics, scenes, split_indices, pairing, seed, sample_rate,
                 clip_seconds, n_captions):
        self.audio: np.ndarray = audio
        self.captions: list[list[str]] = captions
        self.topics: np.ndarray = topics
        self.scenes: list[dict] = scenes
        self.split_indices: dict[str, np.ndarray] = split_indices
        self.pairing: str = pairing
        self.seed: int = seed
        self.sample_rate: int = sample_rate
        self.clip_seconds: float = clip_seconds
        self.n_captions: int = n_captions
        self.topic_names: list[str] = list(SOUND_TOPIC_NAMES)

    def __len__(self) -> int:
        return len(self.audio)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.split_indices.items())
        return (f"SoundWorld(n_clips={len(self)}, seed={self.seed}, clip_seconds={self.clip_seconds:g}, "
                f"sample_rate={self.sample_rate}, pairing={self.pairing!r}, n_captions={self.n_captions}, {sizes})")

    def _split_dataset(self, indices, transform, name) -> "SoundWorldDataset":
        return SoundWorldDataset(self, indices, transform=transform, name=name)

    def waveform(self, i: int) -> np.ndarray:
        """Clip ``i`` as float32 in [-1, 1) (int16 / 32768)."""
        return self.audio[i].astype(np.float32) / 32768.0


class SoundWorldDataset(WorldSplitView, AudioTextDataset):
    """One split of a :class:`SoundWorld` (``pair_id`` = index into the world). Items carry ``audio``: the float32
    waveform (T,) (int16 / 32768), through ``transform`` when one is given."""

    def __init__(self, world: SoundWorld, indices: Sequence[int], transform: Optional[AudioTransform] = None,
                 name: str = "custom") -> None:
        super().__init__(transform)
        self._view(world, indices, name)
        self.sample_rate = world.sample_rate

    def __repr__(self) -> str:
        return f"SoundWorldDataset(split={self.name!r}, n={len(self)}, pairing={self.world.pairing!r})"

    def _audio(self, i: int) -> torch.Tensor:
        wave = torch.from_numpy(self.world.audio[self.indices[i]].astype(np.float32)).div_(32768.0)
        return wave if self.transform is None else self.transform(wave)


# =========================================================================== make_sound_world

def _validate(n_clips, seed, clip_seconds, sample_rate, pairing, n_captions, split_fractions):
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(n_clips) or n_clips < 1:
        raise ValueError(f"n_clips must be a positive integer, got {n_clips!r}")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(clip_seconds, (int, float)) or isinstance(clip_seconds, bool) or not (
            math.isfinite(clip_seconds) and clip_seconds >= MIN_CLIP_SECONDS):
        raise ValueError(f"clip_seconds must be a number >= {MIN_CLIP_SECONDS}, got {clip_seconds!r}")
    if not is_int(sample_rate) or sample_rate < SAMPLE_RATE:
        raise ValueError(f"sample_rate must be an integer >= {SAMPLE_RATE} (the sources reach 7 kHz), got {sample_rate!r}")
    if pairing not in SOUND_CAPTION_STYLES:
        raise ValueError(f"pairing must be one of {tuple(SOUND_CAPTION_STYLES)}, got {pairing!r}")
    if not is_int(n_captions) or n_captions < 1:
        raise ValueError(f"n_captions must be an integer >= 1, got {n_captions!r}")
    try:
        fr = tuple(float(f) for f in split_fractions)
    except (TypeError, ValueError):
        raise ValueError(f"split_fractions must be three numbers (train, val, test), got {split_fractions!r}") from None
    if len(fr) != 3 or any(not math.isfinite(f) or f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(
            f"split_fractions must be three non-negative numbers (train, val, test) summing to 1, got {split_fractions!r}")
    return fr


def make_sound_world(n_clips: int = 1000, seed: int = 0, clip_seconds: float = 2.0,
                     sample_rate: int = SAMPLE_RATE, pairing: str = "literal", n_captions: int = 5,
                     split_fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> SoundWorld:
    """Generate an embedded sound world.

    Args:
        n_clips: number of audio-text pairs (clips).
        seed: everything (scenes, waveforms, captions, splits) is fixed by it.
        clip_seconds: length of every clip (>= 1 s; longer clips hold more events).
        sample_rate: Hz (16 kHz, as most audio-text models use; higher rates work too).
        pairing: "literal" (captions say what is heard, in order) or "complementary" (field notes about the place,
            naming things that are not heard). Both give identical waveforms, scenes, topics and splits.
        n_captions: distinct captions per clip (Clotho has 5, AudioCaps' test set 5, its training set 1).
        split_fractions: (train, val, test), summing to 1.
    """
    fractions = _validate(n_clips, seed, clip_seconds, sample_rate, pairing, n_captions, split_fractions)
    n_clips, seed, n_captions, sample_rate = int(n_clips), int(seed), int(n_captions), int(sample_rate)
    clip_seconds = float(clip_seconds)

    # independent streams: the text of one pairing never disturbs the audio or the splits
    scene_ss, render_ss, literal_ss, complementary_ss, split_ss = np.random.SeedSequence([seed, 0x50D]).spawn(5)
    scene_rng = random.Random(int(scene_ss.generate_state(1, np.uint64)[0]))
    scenes = [sample_sound_scene(scene_rng, clip_seconds) for _ in range(n_clips)]
    audio = render_clips(scenes, clip_seconds, np.random.default_rng(render_ss), sample_rate)
    text_ss = literal_ss if pairing == "literal" else complementary_ss
    text_rng = random.Random(int(text_ss.generate_state(1, np.uint64)[0]))
    write = SOUND_CAPTION_STYLES[pairing]
    captions = [write(sc, text_rng, n_captions) for sc in scenes]

    return SoundWorld(
        audio=audio,
        captions=captions,
        topics=np.array([sc["topic"] for sc in scenes], dtype=np.int64),
        scenes=scenes,
        split_indices=_splits(n_clips, fractions, np.random.default_rng(split_ss)),
        pairing=pairing,
        seed=seed,
        sample_rate=sample_rate,
        clip_seconds=clip_seconds,
        n_captions=n_captions,
    )
