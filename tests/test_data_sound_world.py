"""The embedded sound world: deterministic, the image world's interface and splits, and captions that are TRUE of
the signal — counts, order, pitch, loudness and envelopes read off the waveform (energy envelope, spectral
centroid), never off the scene that generated it."""

import re
from collections import Counter

import librosa
import numpy as np
import pytest
import torch

from labkit.data import AudioTextDataset, PairCollator, make_sound_world
from labkit.data.sound_world import (COUNT_WORDS, EVENT_GAP, LOUDNESS_WORDS, PITCH_WORDS, REPEAT_GAP, SOURCES,
                                     SOUND_TOPIC_NAMES, render_clips, sample_sound_scene)
from labkit.data.text import tokenize_words


@pytest.fixture(scope="module")
def world():
    return make_sound_world(n_clips=240, seed=3, clip_seconds=2.0)


# ----------------------------------------------------------------------------------------------- determinism

def test_same_seed_gives_byte_identical_worlds():
    a = make_sound_world(n_clips=40, seed=7, clip_seconds=1.5)
    b = make_sound_world(n_clips=40, seed=7, clip_seconds=1.5)
    assert a.audio.dtype == np.int16 and a.audio.shape == (40, 24000)
    assert a.audio.tobytes() == b.audio.tobytes()
    assert a.captions == b.captions and a.scenes == b.scenes
    assert all(np.array_equal(a.split_indices[k], b.split_indices[k]) for k in ("train", "val", "test"))
    c = make_sound_world(n_clips=40, seed=8, clip_seconds=1.5)
    assert a.audio.tobytes() != c.audio.tobytes() and a.captions != c.captions


def test_pairings_share_audio_scenes_and_splits():
    lit = make_sound_world(n_clips=30, seed=1, clip_seconds=1.5, pairing="literal")
    comp = make_sound_world(n_clips=30, seed=1, clip_seconds=1.5, pairing="complementary")
    assert lit.audio.tobytes() == comp.audio.tobytes() and lit.scenes == comp.scenes
    assert np.array_equal(lit.topics, comp.topics)
    assert all(np.array_equal(lit.split_indices[k], comp.split_indices[k]) for k in lit.split_indices)
    assert lit.captions != comp.captions
    # complementary texts never name a sound source
    words = set().union(*_KEYWORDS.values())
    for caps in comp.captions:
        for c in caps:
            assert not words & set(tokenize_words(c)), c


# ------------------------------------------------------------------------------------------------- interface

def test_item_interface_and_splits(world):
    assert isinstance(world.train, AudioTextDataset)
    n = {k: len(v) for k, v in world.split_indices.items()}
    assert n == {"train": 192, "val": 24, "test": 24}
    allidx = np.concatenate(list(world.split_indices.values()))
    assert sorted(allidx.tolist()) == list(range(len(world)))
    item = world.test[2]
    assert set(item) == {"audio", "captions", "pair_id", "topic", "saliency", "index"}
    assert item["audio"].dtype == torch.float32 and item["audio"].shape == (32000,)
    assert item["audio"].abs().max() <= 1.0 and item["saliency"] is None and item["index"] == 2
    assert item["pair_id"] == int(world.split_indices["test"][2])
    assert torch.equal(item["audio"], torch.from_numpy(world.waveform(item["pair_id"])))
    assert len(item["captions"]) == 5 and len(set(item["captions"])) == 5
    texts, owner = world.test.captions_flat()
    assert len(texts) == 5 * len(world.test) and owner.tolist() == sorted(owner.tolist())
    assert world.test.topics.tolist() == [world.topics[j] for j in world.split_indices["test"]]
    assert world.topic_names == list(SOUND_TOPIC_NAMES)
    batch = PairCollator(lambda caps: torch.zeros(len(caps), 4, dtype=torch.long))([world.train[i] for i in range(3)])
    assert batch["audio"].shape == (3, 32000) and "image" not in batch and "saliency" not in batch


def test_transform_is_applied(world):
    ds = world.split("val", transform=lambda w: w[:100] * 2)
    assert torch.allclose(ds[0]["audio"], world.val[0]["audio"][:100] * 2)


def test_topics_prefer_their_sources(world):
    from labkit.data.sound_world import SOUND_TOPICS

    hits = total = 0
    for sc in world.scenes:
        for e in sc["events"]:
            total += 1
            hits += e["source"] in SOUND_TOPICS[sc["topic"]].sources
    assert hits / total > 0.6  # 75 % drawn from the preferred sources, the rest at random
    assert Counter(len(sc["events"]) for sc in world.scenes).keys() <= {1, 2, 3}


@pytest.mark.parametrize("kwargs, field", [
    ({"n_clips": 0}, "n_clips"), ({"seed": -1}, "seed"), ({"clip_seconds": 0.5}, "clip_seconds"),
    ({"sample_rate": 8000}, "sample_rate"), ({"pairing": "poetic"}, "pairing"), ({"n_captions": 0}, "n_captions"),
    ({"split_fractions": (0.5, 0.5, 0.5)}, "split_fractions"),
])
def test_bad_arguments_name_the_parameter(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_sound_world(**{"n_clips": 5, **kwargs})


def test_synthesis_is_vectorised_over_units():
    """Rendering costs about the same per clip for 40 or 400 clips (no per-sample Python work)."""
    import random
    import time

    scenes = [sample_sound_scene(random.Random(i), 1.5) for i in range(400)]
    t0 = time.perf_counter()
    render_clips(scenes[:40], 1.5, np.random.default_rng(0))
    small = time.perf_counter() - t0
    t0 = time.perf_counter()
    render_clips(scenes, 1.5, np.random.default_rng(0))
    large = time.perf_counter() - t0
    assert large < 40 * small + 0.5  # 10x the clips in well under 40x the time of the small batch


# ----------------------------------------------------------------------------- captions against the signal

def _keywords() -> dict[str, set[str]]:
    """Content words that name exactly one source (its agents' nouns, verbs, sound nouns)."""
    words = {}
    for s in SOURCES:
        ws = set()
        for phrase in (*s.agents, s.verb, s.gerund, *s.sound):
            ws.update(tokenize_words(phrase))
        words[s.name] = ws - {"a", "an", "the", "at", "someone", "person", "is", "being", "hand", "truck"}
    count = Counter(w for ws in words.values() for w in ws)
    return {n: {w for w in ws if count[w] == 1} for n, ws in words.items()}


_KEYWORDS = _keywords()
_NUMBER = {w: k for k, d in COUNT_WORDS.items() for phrase in d["adverb"] + d["numeral"]
           for w in tokenize_words(phrase) if w not in ("a", "times")}
_PITCH = {w: p for p, ws in PITCH_WORDS.items() for w in ws}
_LOUD = {w: level for level, d in LOUDNESS_WORDS.items() for ws in d.values() for w in ws}
_FORWARD = re.compile(r",? and finally |,? and then |,? then |,? followed by | before ")


def parse_caption(caption: str) -> list[dict]:
    """What a literal caption claims, event by event in time order: source, count, pitch, loudness (None when the
    caption does not say). Reads only the words: connectors give the order ('A, then B', 'B after A', …)."""
    text = re.sub(r"^first ", "", caption.lower().rstrip("."))
    parts = []
    for p in _FORWARD.split(text):
        if " after " in p:
            later, earlier = p.split(" after ", 1)
            parts += [earlier, later]
        else:
            parts.append(p)
    claims = []
    for p in parts:
        toks = tokenize_words(p)
        sources = [n for n, ws in _KEYWORDS.items() if ws & set(toks)]
        assert len(sources) == 1, f"{caption!r}: phrase {p!r} names {sources}"
        counts = {_NUMBER[t] for t in toks if t in _NUMBER}
        pitches = {_PITCH[t] for t in toks if t in _PITCH}
        louds = {_LOUD[t] for t in toks if t in _LOUD}
        assert len(counts) <= 1 and len(pitches) <= 1 and len(louds) <= 1, f"{caption!r}: ambiguous {p!r}"
        claims.append({"source": sources[0], "count": counts.pop() if counts else None,
                       "pitch": pitches.pop() if pitches else None, "loudness": louds.pop() if louds else None})
    return claims


HOP = 80  # 5 ms frames


def activity_groups(wave: np.ndarray, sr: int) -> list[list[tuple[int, int]]]:
    """Segments of the energy envelope above the noise floor + 15 dB, grouped into events: segments closer than
    the shortest gap between two events (EVENT_GAP[0] - a margin) belong to one event; within an event, each
    segment is one repetition."""
    rms = librosa.feature.rms(y=wave, frame_length=512, hop_length=HOP)[0]
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    active = db > np.percentile(db, 10) + 15
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(int), [0]])))
    segs = [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])]
    merged: list[list[int]] = []
    for s in segs:  # bridge dips shorter than 30 ms inside one sound
        if merged and (s[0] - merged[-1][1]) * HOP / sr < 0.03:
            merged[-1][1] = s[1]
        else:
            merged.append(s)
    merged = [s for s in merged if (s[1] - s[0]) * HOP / sr >= 0.015]
    split = (REPEAT_GAP[1] + EVENT_GAP[0]) / 2
    groups: list[list[tuple[int, int]]] = []
    for s in merged:
        if groups and (s[0] - groups[-1][-1][1]) * HOP / sr < split:
            groups[-1].append(tuple(s))
        else:
            groups.append([tuple(s)])
    return groups


@pytest.fixture(scope="module")
def measured(world):
    """Per clip: the caption claims and what the signal says, per event group."""
    sr = world.sample_rate
    out = []
    for i in range(len(world)):
        wave = world.waveform(i)
        groups = activity_groups(wave, sr)
        power = np.abs(librosa.stft(wave, n_fft=1024, hop_length=HOP)) ** 2
        freqs = librosa.fft_frequencies(sr=sr, n_fft=1024)
        rms = librosa.feature.rms(y=wave, frame_length=512, hop_length=HOP)[0]
        active = np.zeros(power.shape[1], dtype=bool)
        for g in groups:
            for a, b in g:
                active[a:b] = True
        background = power[:, ~active].mean(axis=1)
        events = []
        for g in groups:
            frames = np.concatenate([np.arange(a, b) for a, b in g])
            excess = np.maximum(power[:, frames].mean(axis=1) - background, 0.0)
            span = rms[g[0][0]:g[-1][1]]
            third = max(1, len(span) // 3)
            events.append({"repetitions": len(g),
                           "centroid": float((excess * freqs).sum() / excess.sum()),  # pitch, background removed
                           "peak_db": float(20 * np.log10(span.max())),
                           "thirds": (span[:third].mean(), span[third:-third].mean(), span[-third:].mean())})
        out.append({"index": i, "events": events, "claims": [parse_caption(c) for c in world.captions[i]]})
    return out


def test_every_caption_parses_into_the_events_heard_in_order(world, measured):
    for m in measured:
        assert len(m["events"]) == len(world.scenes[m["index"]]["events"]), m["index"]
        for claims in m["claims"]:
            assert len(claims) == len(m["events"]), (m["index"], claims)


def test_counts_and_order_match_the_energy_envelope(measured):
    """'A dog barks twice, then a bell rings three times': the caption's k-th event has as many bursts of energy,
    in the k-th group of the signal, as the caption's count word says."""
    checked = 0
    for m in measured:
        for claims in m["claims"]:
            for claim, heard in zip(claims, m["events"]):
                if claim["count"] is not None:
                    assert heard["repetitions"] == claim["count"], (m["index"], claims, heard["repetitions"])
                    checked += 1
    assert checked > 1000


def test_order_is_checked_where_it_can_fail(measured):
    """Swapping the caption's order would break the count check in many clips (their events' counts differ)."""
    swappable = sum(1 for m in measured for claims in m["claims"]
                    if len(claims) >= 2 and claims[0]["count"] and claims[1]["count"]
                    and claims[0]["count"] != claims[1]["count"])
    assert swappable > 50


def _auc(high, low) -> float:
    high, low = np.asarray(high), np.asarray(low)
    return float((high[:, None] > low[None, :]).mean())


def test_pitch_words_order_the_spectral_centroid(measured):
    """For every source, events captioned 'high-pitched / shrill / high' have a higher spectral centroid than those
    captioned 'low-pitched / deep / low' (AUC over all pairs)."""
    by_source: dict[str, dict[str, list[float]]] = {}
    for m in measured:
        for claims in m["claims"]:
            for claim, heard in zip(claims, m["events"]):
                if claim["pitch"]:
                    by_source.setdefault(claim["source"], {"low": [], "high": []})[claim["pitch"]].append(heard["centroid"])
    tested = 0
    for source, d in by_source.items():
        if d["low"] and d["high"]:
            assert _auc(d["high"], d["low"]) > 0.97, source
            tested += 1
    assert tested >= 10


def test_loudness_words_order_the_peak_level(measured):
    loud, quiet = [], []
    for m in measured:
        for claims in m["claims"]:
            for claim, heard in zip(claims, m["events"]):
                if claim["loudness"] == "loud":
                    loud.append(heard["peak_db"])
                elif claim["loudness"] == "quiet":
                    quiet.append(heard["peak_db"])
    assert len(loud) > 50 and len(quiet) > 50
    assert _auc(loud, quiet) > 0.97


def test_envelopes_match_the_energy_over_time(world, measured):
    words = {"rising": ("louder", "approaches", "approaching", "closer"), "falling": ("fading", "quieter", "away"),
             "passing": ("passes", "passing", "past")}
    checked = 0
    for m in measured:
        for caption in world.captions[m["index"]]:
            claims = parse_caption(caption)
            for k, (claim, heard) in enumerate(zip(claims, m["events"])):
                phrase_words = set(tokenize_words(caption))
                said = [env for env, ws in words.items() if set(ws) & phrase_words]
                if len(claims) != 1 or len(said) != 1:
                    continue  # single-event captions only: the words then belong to that event
                first, mid, last = heard["thirds"]
                ok = {"rising": last > first, "falling": first > last,
                      "passing": mid > first and mid > last}[said[0]]
                assert ok, (m["index"], caption, heard["thirds"])
                checked += 1
    assert checked > 30
