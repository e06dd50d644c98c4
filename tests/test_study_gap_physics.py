"""labkit.studies.gap_physics: the Procrustes-aligned init, the landscape along the gap, Mind the Gap's toy sphere,
the arms' bookkeeping and the equivalence verdict — each against a hand computation."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from labkit.data import make_world
from labkit.evaluate import Embeddings, embed_dataset
from labkit.losses import clip_loss
from labkit.metrics import modality_gap, retrieval_recall
from labkit.models import create_model
from labkit.studies.gap_physics import (GapPhysics, _arms, equivalence_verdict, gap_landscape, gap_settings,
                                        inverse_temperature, procrustes_aligned_checkpoint, toy_sphere, width_model)


def test_procrustes_checkpoint_is_the_rotated_model(tmp_path, one_thread):
    world = make_world(n_pairs=120, seed=0)
    info = procrustes_aligned_checkpoint("labkit-micro", world.train, seed=3, path=tmp_path / "a.pt")
    assert info["gap_after"] < 0.3 * info["gap_before"]
    plain = create_model("labkit-micro", seed=3)
    aligned = create_model("labkit-micro", checkpoint=tmp_path / "a.pt")
    e0 = embed_dataset(plain.model, world.train, plain.tokenizer, device="cpu")
    e1 = embed_dataset(aligned.model, world.train, aligned.tokenizer, device="cpu")
    np.testing.assert_array_equal(e0.image, e1.image)  # the image tower is untouched
    # text_projection was multiplied by an orthogonal R, and the text embeddings are exactly the old ones rotated by R
    p0 = plain.model.text_projection.detach().double().numpy()
    p1 = aligned.model.text_projection.detach().double().numpy()
    r = np.linalg.solve(p0, p1)
    np.testing.assert_allclose(r.T @ r, np.eye(r.shape[0]), atol=1e-5)
    np.testing.assert_allclose(e0.text @ r, e1.text, atol=1e-5)
    np.testing.assert_allclose(e1.text @ e1.text.T, e0.text @ e0.text.T, atol=1e-5)  # inner products kept
    assert modality_gap(e1.image, e1.paired_text) == pytest.approx(info["gap_after"], abs=1e-4)


def _embeddings(seed=0, n=40, d=8, offset=0.8):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    shift = np.r_[offset, np.zeros(d - 1)]
    image = z + shift + 0.3 * rng.normal(size=(n, d))
    text = np.vstack([z - shift + 0.3 * rng.normal(size=(n, d)), z - shift + 0.3 * rng.normal(size=(n, d))])
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return Embeddings(unit(image), unit(text), np.r_[np.arange(n), np.arange(n)], np.zeros(n, dtype=np.int64))


def test_landscape_by_hand():
    emb = _embeddings()
    frame = gap_landscape(emb, deltas=[0.0, 0.3], scales=(100, 1))
    row0 = frame[(frame["delta"] == 0.0) & ~frame["closing"]].iloc[0]
    assert row0["gap"] == pytest.approx(modality_gap(emb.image, emb.paired_text), abs=1e-6)
    x, y = torch.from_numpy(emb.image.astype(np.float64)), torch.from_numpy(emb.paired_text.astype(np.float64))
    assert row0["loss@100"] == pytest.approx(float(clip_loss(x, y, 100.0)), abs=1e-5)
    assert row0["loss@1"] == pytest.approx(float(clip_loss(x, y, 1.0)), abs=1e-6)
    rec = retrieval_recall(emb.image, emb.text, emb.text_to_image)
    assert row0["i2t_R@1"] == pytest.approx(rec["i2t_R@1"]) and row0["t2i_R@5"] == pytest.approx(rec["t2i_R@5"])
    # the shift by hand: images − δ/2 g, captions + δ/2 g, re-normalised
    g = emb.image.mean(0).astype(np.float64) - emb.paired_text.mean(0)
    g /= np.linalg.norm(g)
    xs = emb.image - 0.15 * g
    ys = emb.paired_text + 0.15 * g
    xs /= np.linalg.norm(xs, axis=1, keepdims=True)
    ys /= np.linalg.norm(ys, axis=1, keepdims=True)
    row1 = frame[frame["delta"] == 0.3].iloc[0]
    assert row1["gap"] == pytest.approx(np.linalg.norm(xs.mean(0) - ys.mean(0)), abs=1e-6)
    closing = frame[frame["closing"]].iloc[0]
    assert closing["delta"] > 0.3 and abs(closing["gap"]) < 0.1 * row0["gap"]
    xc = emb.image - 0.5 * closing["delta"] * g
    yc = emb.paired_text + 0.5 * closing["delta"] * g
    xc /= np.linalg.norm(xc, axis=1, keepdims=True)
    yc /= np.linalg.norm(yc, axis=1, keepdims=True)
    assert abs((xc.mean(0) - yc.mean(0)) @ g) < 1e-5  # closed along the gap direction


def test_toy_sphere_reproduces_mind_the_gap():
    toy = toy_sphere(scales=(100, 1))
    best = toy.loc[toy.groupby(["mismatched", "scale"])["loss"].idxmin()].set_index(["mismatched", "scale"])
    assert best.loc[(False, 100.0), "theta"] == 0.0 and best.loc[(False, 1.0), "theta"] == 0.0
    assert abs(best.loc[(True, 100.0), "gap"]) > 0.5  # low temperature, mismatched pairs: a gap is optimal
    assert best.loc[(True, 1.0), "theta"] == 0.0
    # one point by hand: θ = 0, all pairs correct, the loss of identical pairs on the equator
    row = toy[(~toy["mismatched"]) & (toy["scale"] == 1.0) & (toy["theta"] == 0.0)].iloc[0]
    u = np.radians([-20, 0, 20, 40, 60, 80])
    pts = np.stack([np.cos(u), np.sin(u), np.zeros(6)], axis=1)
    logits = pts @ pts.T
    expected = float(np.mean([-(logits[i, i] - np.log(np.exp(logits[i]).sum())) for i in range(6)]))
    assert row["loss"] == pytest.approx(expected, abs=1e-9) and row["gap"] == 0.0


def test_equivalence_verdict():
    assert equivalence_verdict(0.5, 0.3, 2.0) == "holds"
    assert equivalence_verdict(-3.4, 0.15, 2.0) == "does not hold"
    assert equivalence_verdict(1.5, 0.5, 2.0) == "inconclusive"
    assert equivalence_verdict(0.0, float("nan"), 2.0) == "inconclusive"


def test_arms_share_runs_and_names():
    settings = gap_settings("smoke")
    arms = _arms(settings)
    assert [a["temperature"] for a in arms["temperature"]] == ["100", "10", "1", "learned"]
    assert arms["init"][0] == arms["temperature"][0]  # the 1/τ = 100 random-init arm is trained once
    assert {a["width"] for a in arms["width"]} == {64, 128}
    assert [a["captions"] for a in arms["imbalance"]] == ["attributes_1", "attributes_4"]
    assert inverse_temperature("learned") is None and inverse_temperature("10") == 10.0
    assert width_model("labkit-micro", 64) == "labkit-micro" and width_model("labkit-tiny", 16) == "labkit-tiny-dim16"
    with pytest.raises(ValueError, match="labkit-micro-dim48"):
        width_model("labkit-micro", 48)
    with pytest.raises(ValueError, match="1/τ"):
        _arms({**settings, "temperatures": (200,)})


def test_claims_follow_the_numbers():
    """A synthetic table whose numbers are known: the verdicts must follow them (and an arm that did not learn
    makes its claims inconclusive)."""
    rows = []
    for s in (0, 1, 2):
        for t, gap in (("100", 1.0), ("10", 0.5), ("1", 0.1)):
            rows.append({"temperature": t, "width": 64, "init": "random", "captions": "literal", "seed": s,
                         "gap": gap + 0.01 * s, "init/gap": 1.1, "gap_ratio": (gap + 0.01 * s) / 1.1,
                         "t2i_over_chance": 20.0 if t != "1" else 2.0, "separability": 0.9})
    table = pd.DataFrame(rows)
    arms = {"temperature": [{"temperature": t, "width": 64, "init": "random", "captions": "literal"}
                            for t in ("100", "10", "1")]}
    physics = GapPhysics(table, ("temperature", "width", "init", "captions"), {}, arms=arms,
                         settings={"landscape_scales": (100,)})
    claims = {c.id: c for c in physics.claims()}
    assert claims["gap_falls_as_temperature_rises"].verdict == "inconclusive"  # the 1/τ = 1 arm did not learn
    assert "did not learn" in claims["gap_falls_as_temperature_rises"].detail
    assert claims["gap_falls_as_temperature_rises"].mean == pytest.approx(-0.9)
    assert claims["gap_preserved_at_low_temperature"].verdict == "holds"  # 1.0/1.1 = 0.91 > 0.8, tiny spread
    table.loc[table["temperature"] == "1", "t2i_over_chance"] = 20.0
    claims = {c.id: c for c in GapPhysics(table, physics.factors, {}, arms=arms,
                                          settings=physics.settings).claims()}
    assert claims["gap_falls_as_temperature_rises"].verdict == "holds"
    assert math.isclose(claims["small_gap_still_separable"].mean, 0.9)


def test_trend_is_mixed_when_the_ends_differ_but_the_means_zigzag():
    rows = [{"temperature": t, "width": 64, "init": "random", "captions": "literal", "seed": s, "gap": gap + 0.01 * s}
            for s in (0, 1, 2) for t, gap in (("100", 1.0), ("10", 1.2), ("1", 0.1))]
    arms = {"temperature": [{"temperature": t, "width": 64, "init": "random", "captions": "literal"}
                            for t in ("100", "10", "1")]}
    physics = GapPhysics(pd.DataFrame(rows), ("temperature", "width", "init", "captions"), {}, arms=arms)
    d, means, monotone, verdict = physics.trend("temperature", "gap", ["100", "10", "1"], "decrease")
    assert d.mean == pytest.approx(-0.9) and means == pytest.approx([1.01, 1.21, 0.11])
    assert not monotone and verdict == "mixed"
    *_, monotone, verdict = physics.trend("temperature", "gap", ["10", "1"], "decrease")
    assert monotone and verdict == "holds"
    *_, monotone, verdict = physics.trend("temperature", "gap", ["1", "10"], "increase")
    assert monotone and verdict == "holds"
    assert physics.trend("temperature", "gap", ["10", "1"], "increase")[3] == "does not hold"
