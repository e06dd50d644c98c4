"""labkit.studies.grl_sweep: seed 000's λ sweep on a small world (λ = 0 is the baseline, bit for bit), its
verdicts and claims, and notebook 04 end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch

from labkit.report import VERDICTS, read_claims


# ---------------------------------------------------------------------------------------------- notebook 04


@pytest.mark.notebook
def test_notebook_04_writes_the_sweep_and_its_claims(run_notebook):
    """Notebook 04 end to end in the tests' ``tiny`` profile (2 seeds; executed once per session)."""
    out_dir, seconds = run_notebook("04_grl_gap_reducer")
    metrics = json.loads((out_dir / "metrics.json").read_text())
    for key in ("gap@lambda=0.5", "silhouette@lambda=0.5", "mean_recall@lambda=0.5", "gap@lambda=0.5/seed=1",
                "claim/gap_shrinks", "claim/retrieval_best_at_intermediate_lambda", "baseline/t2i_R@1_over_chance"):
        assert key in metrics, key
    for lambd in ("0", "0.5", "1", "3"):  # 4 λ × 2 seeds
        assert all(f"gap@lambda={lambd}/seed={s}" in metrics for s in (0, 1)), lambd
    claims = read_claims(out_dir / "claims.json")
    assert [c["id"] for c in claims] == ["gap_shrinks_with_lambda", "retrieval_best_at_intermediate_lambda",
                                         "centering_closes_gap", "cua_closes_gap", "cuaxu_closes_gap",
                                         "warmer_temperature_closes_gap"]
    assert all(c["source"].startswith("seed 000") and c["n"] == 2 for c in claims[:2])
    assert "1/τ = 100" in claims[0]["source"] and "DANN warm-up" in claims[0]["source"]
    assert metrics["inverse_temperature"] == 100.0
    for method in ("CLIP (baseline)", "post-hoc centering of the baseline", "uniformity + alignment (L_CUA)",
                   "uniformity + alignment + cross-uniformity (L_CUAXU)", "warmer temperature",
                   "GRL λ = 1 (DANN warm-up, classifier lr ×10)"):
        assert f"closer/{method}/gap" in metrics, method
    assert (out_dir / "results.md").read_text().startswith("### 04")
    if metrics["baseline/t2i_R@1_over_chance"] < 5:  # a model that has not learned cannot confirm a claim
        assert all(c["verdict"] == "inconclusive" for c in claims)
    for fig in ("retrieval_vs_lambda.png", "gap_vs_lambda.png", "classifier_accuracy_vs_lambda.png",
                "pca_lambda0_vs_best.png", "lambda_schedule.png"):
        assert (out_dir / fig).is_file(), fig
    print(f"04_grl_gap_reducer: {seconds:.1f} s")


def test_embed_dim_of_known_models():
    from labkit.models import embed_dim_of

    assert embed_dim_of("labkit-tiny") == 64
    assert embed_dim_of("ViT-B-32") == 512  # an open_clip config, no download needed
    with pytest.raises(ValueError):
        embed_dim_of("no-such-model")


def test_lambda_sweep_on_a_small_world_and_lambda_zero_is_the_baseline():
    data = pytest.importorskip("labkit.data")
    from labkit.studies.recipe import train_clip
    from labkit.studies.grl_sweep import lambda_sweep

    world = data.make_world(n_pairs=240, seed=0)
    settings = dict(epochs=1, batch_size=64, lr=2e-3, warmup_steps=2, device="cpu", progress=False)
    sweep = lambda_sweep(world, lambdas=[0.0, 1.0], seeds=[0, 1], lambda_on="grl", log=None, **settings)
    assert sweep.table.shape[0] == 4 and sweep.lambdas == [0.0, 1.0] and sweep.seeds == [0, 1]
    # λ = 0 trains the encoders exactly as the CLIP loss alone does (same seed → same numbers, bit for bit)
    baseline = train_clip(world, seed=1, **settings)
    run = sweep.runs[(0.0, 1)]
    for name, value in baseline.model.state_dict().items():
        assert torch.equal(value, run.model.state_dict()[name]), name
    assert run.metrics == baseline.metrics
    # the outputs the notebook relies on
    m = sweep.metrics()
    for key in ("gap@lambda=1", "silhouette@lambda=1", "mean_recall@lambda=1", "gap@lambda=1/seed=1",
                "gap@lambda=0/std", "classifier_acc_test@lambda=0"):
        assert key in m and math.isfinite(m[key]), key
    assert m["gap@lambda=1"] == pytest.approx(sweep.table.loc[sweep.table["lambda"] == 1.0, "gap"].mean())
    v = sweep.verdict()
    assert v["gap_claim"] in ("holds", "partly", "does not hold")
    assert v["recall_claim"] in ("holds", "within noise", "does not hold")
    assert "(i)" in v["text"] and "(ii)" in v["text"]
    claims = sweep.claims()
    assert len(claims) == 2 and all(c.verdict in VERDICTS and c.n == 2 for c in claims)
    assert claims[0].mean == pytest.approx(v["gap_change"])
    assert list(sweep.recall_table().columns[:2]) == ["i2t_R@5", "t2i_R@5"]
    x, ys = sweep.curves("lambda", {"gap": "gap"})
    assert x.tolist() == [0.0, 1.0] and ys["gap"][0].shape == (2,)
    epochs, traces = sweep.training_curves()
    assert epochs.tolist() == [1.0] and set(traces) == {"λ = 0", "λ = 1"}


def test_warm_up_and_other_gap_closers_on_a_small_world(one_thread):
    """The sweep with DANN's warm-up logs λ_p rising; the other gap closers and post-hoc centering fill the
    comparison table; centering uses the training split's means and shrinks the gap."""
    from labkit.data import make_world
    from labkit.metrics import center_modalities, modality_gap
    from labkit.studies.grl_sweep import (centred_metrics, gap_closer_claims, gap_closer_rows, gap_closer_table,
                                          lambda_sweep, other_gap_closers)

    world = make_world(n_pairs=200, seed=0)
    settings = dict(epochs=2, batch_size=32, lr=1e-3, warmup_steps=2, device="cpu", progress=False,
                    model_name="labkit-micro", temperature=0.01)
    sweep = lambda_sweep(world, lambdas=[0.0, 1.0], seeds=[0, 1], lambda_on="grl", schedule="dann",
                         classifier_lr_scale=10.0, log=None, **settings)
    lam = sweep.runs[(1.0, 0)].history["modality/lambda"].to_numpy()
    assert 0 < lam[0] < lam[1] <= 1.0 and sweep.schedule_label == "DANN warm-up, classifier lr ×10"
    others = other_gap_closers(world, seeds=[0, 1], log=None, **settings)
    assert others.values("method") == ["cua", "cuaxu", "warmer_temperature"]
    rows = gap_closer_rows(sweep, others, world)
    assert rows.groupby("method").size().to_dict() == {m: 2 for m in rows["method"].unique()} and len(rows) == 12
    table = gap_closer_table(rows)
    assert table.loc["CLIP (baseline)", "Δgap vs baseline"] == "—"
    # centering by hand: the training split's means, applied to the test embeddings
    base = sweep.runs[(0.0, 0)]
    c = centred_metrics(base, world, seed=0)
    from labkit.evaluate import embed_dataset
    train = embed_dataset(base.model, world.train, base.bundle.tokenizer, device="cpu")
    x, y = center_modalities(base.final.image, base.final.text, train.image.mean(0), train.text.mean(0))
    first = [list(base.final.text_to_image).index(i) for i in range(len(base.final.image))]
    assert c["gap"] == pytest.approx(modality_gap(x, y[first]), abs=1e-5)
    assert c["gap"] < base.metrics["gap"]
    claims = gap_closer_claims(rows)
    assert [cl.id for cl in claims] == ["centering_closes_gap", "cua_closes_gap", "cuaxu_closes_gap",
                                        "warmer_temperature_closes_gap"]
    assert all(cl.verdict == "inconclusive" for cl in gap_closer_claims(rows, learned=False))
