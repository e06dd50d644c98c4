"""Notebook 05's study: the verdict rules on hand-made sweep tables, the comparison's bookkeeping, the data doors,
and one real training (same seed → same numbers; the real-data path on a Clotho fixture)."""

import csv

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from labkit.studies.audio_gap import (AUDIO_PROFILES, ModalityComparison, RealAudioSource, _sweep_claims,
                                      classifier_probe,
                                      audio_claims, audio_settings, modality_comparison, open_sound_source, table1,
                                      train_audio_clip)
from labkit.studies.grl_sweep import GrlSweep
from labkit.studies.sweep import Sweep

SEEDS = (0, 1, 2)


def _row(seed, lambd=None, gap=1.0, recall=40.0, **extra):
    row = {"seed": seed, "gap": gap, "silhouette": gap / 2, "mean_recall": recall, "t2i_R@1": 10.0,
           "chance/t2i_R@1": 1.0, "t2i_R@1_over_chance": 10.0, "classifier_acc_test": 0.9,
           "classifier_bce_train": 0.4, "pc1_modality_separation": 1.0, "pc1_variance_share": 0.5,
           **{f"init/{k}": 1.2 for k in ("gap", "silhouette", "pc1_modality_separation", "pc1_variance_share")},
           **{f"{d}_R@{k}": recall for d in ("i2t", "t2i") for k in (1, 5, 10) if not (d == "t2i" and k == 1)}}
    if lambd is not None:
        row["lambda"] = lambd
    row.update(extra)
    return row


def _sweep(gaps: dict, recalls: dict, **extra) -> GrlSweep:
    rows = [_row(s, l, gap=gaps[l][i], recall=recalls[l][i], **extra) for l in gaps for i, s in enumerate(SEEDS)]
    table = pd.DataFrame(rows)
    return GrlSweep(table[["lambda", "seed", *[c for c in table if c not in ("lambda", "seed")]]], ("lambda",), {})


def test_sweep_claims_hold_when_lambda_1_is_best_and_shrinks_the_gap():
    gaps = {0.0: [0.90, 0.95, 0.92], 0.5: [0.85, 0.90, 0.86], 1.0: [0.80, 0.84, 0.83], 3.0: [0.70, 0.75, 0.71]}
    recalls = {0.0: [40, 42, 41], 0.5: [41, 43, 42], 1.0: [43, 45, 44.5], 3.0: [39, 41, 40]}
    claims = {c.id: c for c in _sweep_claims(_sweep(gaps, recalls), "adamw")}
    assert claims["adamw.gap_shrinks_with_lambda"].verdict == "holds"
    assert claims["adamw.gap_shrinks_with_lambda"].mean == pytest.approx(np.mean([-0.2, -0.2, -0.21]))
    assert claims["adamw.lambda1_smaller_gap"].verdict == "holds"
    assert claims["adamw.lambda1_beats_baseline"].verdict == "holds"
    assert claims["adamw.lambda1_best"].verdict == "holds"
    assert claims["adamw.lambda1_best"].mean == pytest.approx(np.mean([2, 2, 2.5]))  # smallest gain: over λ = 0.5


def test_sweep_claims_do_not_hold_or_mix_when_the_numbers_say_so():
    gaps = {0.0: [0.80, 0.84, 0.83], 1.0: [0.90, 0.95, 0.92], 3.0: [0.80, 0.84, 0.84]}
    recalls = {0.0: [43, 45, 44], 1.0: [40, 42, 41], 3.0: [44, 46, 45]}
    claims = {c.id: c for c in _sweep_claims(_sweep(gaps, recalls), "sgd")}
    assert claims["sgd.lambda1_smaller_gap"].verdict == "does not hold"
    assert claims["sgd.lambda1_beats_baseline"].verdict == "does not hold"
    assert claims["sgd.lambda1_best"].verdict == "does not hold"
    assert claims["sgd.gap_shrinks_with_lambda"].verdict == "inconclusive"  # paired change 0, +0, +0.01
    assert "SGD" in claims["sgd.lambda1_best"].measured


def test_claims_of_a_baseline_that_did_not_learn_are_inconclusive():
    gaps = {0.0: [0.90, 0.95, 0.92], 1.0: [0.80, 0.84, 0.83]}
    recalls = {0.0: [40, 42, 41], 1.0: [43, 45, 44.5]}
    sweep = _sweep(gaps, recalls, **{"t2i_R@1": 2.0})  # 2x chance
    claims = _sweep_claims(sweep, "adamw")
    assert all(c.verdict == "inconclusive" for c in claims)
    assert all("did not learn far above chance" in c.detail and "measured verdict was 'holds'" in c.detail
               for c in claims)


def test_modality_comparison_pairs_audio_and_image_baselines():
    gaps = {0.0: [0.70, 0.72, 0.71], 1.0: [0.6, 0.6, 0.6]}
    recalls = {0.0: [40, 42, 41], 1.0: [40, 42, 41]}
    sweeps = {"adamw": _sweep(gaps, recalls), "sgd": _sweep({0.0: [1.2, 1.25, 1.22], 1.0: [1.2, 1.25, 1.22]},
                                                            recalls)}
    images = Sweep(pd.DataFrame([{"world": "image", **_row(s, gap=g)} for s, g in zip(SEEDS, (1.0, 1.1, 1.05))]),
                   ("world",), {})
    cmp = modality_comparison(sweeps, images)
    assert cmp.sweep.values("world") == [ModalityComparison.AUDIO, ModalityComparison.AUDIO_SGD,
                                         ModalityComparison.IMAGE]
    d = cmp.paired("gap", cmp.IMAGE, cmp.AUDIO)
    assert d.mean == pytest.approx(np.mean([0.70 - 1.0, 0.72 - 1.1, 0.71 - 1.05]))
    table = cmp.table(("gap", "silhouette"))
    assert table.loc["gap", (cmp.IMAGE, "trained")] == "1.050 ± 0.050"
    claims = {c.id: c for c in audio_claims(sweeps, cmp)}
    assert claims["audio_gap_larger"].verdict == "does not hold"
    assert claims["audio_gap_larger.seed_optimisers"].verdict == "holds"
    assert claims["audio_pc1_separates_more"].verdict == "inconclusive"  # no difference at all
    assert "world=audio" in " ".join(cmp.flat_metrics())
    with pytest.raises(ValueError, match="λ = 0"):
        modality_comparison({"adamw": _sweep({1.0: [0.6] * 3}, {1.0: [40] * 3})}, images)


def test_settings_and_data_doors(tmp_path):
    assert set(AUDIO_PROFILES) == {"smoke", "full", "tiny"}
    s = audio_settings("smoke", epochs=3, n_clips=None)
    assert s["epochs"] == 3 and s["n_clips"] == AUDIO_PROFILES["smoke"]["n_clips"]
    assert AUDIO_PROFILES["smoke"]["n_seeds"] >= 3 and list(AUDIO_PROFILES["smoke"]["lambdas"]) == [0.0, 0.5, 1.0, 3.0]
    with pytest.raises(ValueError, match="profile"):
        audio_settings("huge")
    with pytest.raises(ValueError, match="data_root"):
        open_sound_source("clotho")
    with pytest.raises(ValueError, match="dataset"):
        open_sound_source("esc50", data_root=str(tmp_path))
    world = open_sound_source(n_clips=10, seed=1, clip_seconds=1.0, split_fractions=(0.6, 0.2, 0.2))
    assert len(world.test) == 2 and world.clip_seconds == 1.0


def test_train_audio_clip_is_deterministic_and_sgd_uses_its_own_rate():
    world = open_sound_source(n_clips=60, seed=0, clip_seconds=1.0)
    kwargs = dict(epochs=1, batch_size=16, lr=2e-3, sgd_lr=5e-3, device="cpu", progress=False, warmup_steps=1)
    a = train_audio_clip(world, seed=4, **kwargs)
    b = train_audio_clip(world, seed=4, **kwargs)
    assert a.metrics == b.metrics and a.metrics_init == b.metrics_init
    assert np.array_equal(a.final.image, b.final.image)
    assert set(a.chance) == {f"{d}_R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)}
    c = train_audio_clip(world, seed=4, optimizer="sgd", **kwargs)
    assert c.history["lr"].iloc[0] <= 5e-3 and c.metrics != a.metrics
    with pytest.raises(ValueError, match="optimizer"):
        train_audio_clip(world, optimizer="lbfgs", **kwargs)


def test_real_data_path_trains_on_a_clotho_fixture(tmp_path):
    root = tmp_path / "clotho"
    header = ["file_name", *[f"caption_{k}" for k in range(1, 6)]]
    rng = np.random.default_rng(0)
    for name, n in (("development", 8), ("evaluation", 4)):
        (root / name).mkdir(parents=True)
        with open(root / f"clotho_captions_{name}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for i in range(n):
                w.writerow([f"{name} {i}.wav", *[f"sound {i} caption {k}" for k in range(5)]])
                sf.write(root / name / f"{name} {i}.wav", (0.1 * rng.standard_normal(44100)).astype("float32"), 44100)
    source = open_sound_source("clotho", data_root=str(root), clip_seconds=1.0)
    assert isinstance(source, RealAudioSource)
    result = train_audio_clip(source, seed=0, epochs=1, batch_size=4, lr=1e-3, device="cpu", progress=False,
                              warmup_steps=1, clip_seconds=1.0)
    assert result.final.image.shape == (4, 64) and result.final.text.shape == (20, 64)
    assert "T-A avg" in table1(GrlSweep(pd.DataFrame([{"lambda": 0.0, **_row(0)}]), ("lambda",), {})).columns


def test_classifier_probe_sgd_l2_pins_the_classifier_at_chance_and_adamw_learns():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=16)
    mu /= np.linalg.norm(mu)
    audio, text = rng.normal(size=(64, 16)) * 0.1 + 0.5 * mu, rng.normal(size=(64, 16)) * 0.1 - 0.5 * mu
    runs = {"sgd l2": ("sgd", 0.1, 0.1), "sgd": ("sgd", 0.1, 0.0), "adamw": ("adamw", 2e-3, 0.1)}
    probe = classifier_probe(audio, text, runs, depth=5, steps=56, batch_size=32)
    assert probe.loc["sgd l2", "bce_after"] == pytest.approx(np.log(2), abs=2e-3)  # L2 0.1 keeps it at chance
    assert probe.loc["sgd", "accuracy_after"] == 1.0 and probe.loc["adamw", "accuracy_after"] == 1.0
    assert probe.loc["sgd", "bce_at_init"] == pytest.approx(np.log(2), abs=0.01)
    again = classifier_probe(audio, text, runs, depth=5, steps=56, batch_size=32)
    pd.testing.assert_frame_equal(probe, again)
    with pytest.raises(ValueError, match="optimizer"):
        classifier_probe(audio, text, {"x": ("lbfgs", 0.1, 0.0)})
    with pytest.raises(ValueError, match="equal in shape"):
        classifier_probe(audio, text[:5], runs)


def test_sgd_weight_decay_reaches_the_optimizer(monkeypatch):
    import labkit.studies.recipe as recipe  # train_audio_clip trains through recipe.fit_and_measure

    seen = {}
    real_fit = recipe.fit

    def spy(model, objective, dataset, tokenizer, config):
        seen[config.optimizer] = (config.weight_decay, config.lr)
        return real_fit(model, objective, dataset, tokenizer, config)

    monkeypatch.setattr(recipe, "fit", spy)
    world = open_sound_source(n_clips=40, seed=0, clip_seconds=1.0)
    kwargs = dict(epochs=1, batch_size=16, lr=2e-3, sgd_lr=5e-3, device="cpu", progress=False, weight_decay=0.2)
    train_audio_clip(world, optimizer="sgd", sgd_weight_decay=0.0, **kwargs)
    train_audio_clip(world, optimizer="adamw", sgd_weight_decay=0.0, **kwargs)
    assert seen == {"sgd": (0.0, 5e-3), "adamw": (0.2, 2e-3)}
    assert AUDIO_PROFILES["smoke"]["sgd_weight_decay"] == 0.0
