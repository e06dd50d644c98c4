"""Distributed data parallel: two gloo processes under torchrun train exactly as one process on the same global batch
(losses, gradients, weights, to float tolerance) — for the CLIP loss, open_clip's local_loss, the GRL objective and
seed 001's hinge loss (which leaves the temperature without a gradient);
the sampler's blocks rebuild the single-process batches; gathering sends each row its summed gradient."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labkit.losses import ClipLoss, Features
from labkit.train import EpochSampler

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _worker():
    spec = importlib.util.spec_from_file_location("ddp_worker", HERE / "ddp_worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torchrun_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    return env


def launch(out: Path, device: str = "cpu") -> dict:
    """Run the worker under torchrun with 2 processes (gloo on CPU, NCCL on CUDA); return rank 0's record."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "ddp_worker.py"), str(out)]
    env = {**torchrun_env(), "LABKIT_TEST_DEVICE": device}
    proc = subprocess.run(cmd, cwd=out.parent, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return torch.load(out, weights_only=False)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    return launch(tmp_path_factory.mktemp("ddp") / "ddp.pt")


@pytest.fixture(scope="module")
def one_process():
    worker = _worker()
    return {name: worker.run(name) for name in worker.SCENARIOS}


@pytest.mark.parametrize("scenario", ["clip", "clip_local_loss", "grl", "hinge"])
def test_two_processes_train_like_one_on_the_global_batch(two_processes, one_process, scenario):
    check_equivalence(two_processes, one_process, scenario)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (NCCL)")
def test_two_gpus_with_nccl_train_like_one(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_TEST_DEVICE", "cuda")
    worker = _worker()
    ddp = launch(tmp_path / "ddp.pt", device="cuda")
    ref = {name: worker.run(name) for name in worker.SCENARIOS}
    for scenario in worker.SCENARIOS:  # cuBLAS sums in another order than the CPU: same tolerances hold here
        check_equivalence(ddp, ref, scenario)


def check_equivalence(two_processes, one_process, scenario):
    ddp, ref = two_processes[scenario], one_process[scenario]
    assert two_processes["world_size"] == 2
    assert len(ddp["step_logs"]) == len(ref["step_logs"]) == 6
    for a, b in zip(ddp["step_logs"], ref["step_logs"]):  # every logged number, step by step (rank-averaged)
        assert a.keys() == b.keys()
        for k in b:
            assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), k
    for step, (ga, gb) in enumerate(zip(ddp["grads"], ref["grads"])):
        assert ga.keys() == gb.keys()
        for k in gb:
            torch.testing.assert_close(ga[k], gb[k], rtol=1e-4, atol=1e-6, msg=lambda m: f"step {step} {k}: {m}")
    if scenario == "grl":  # the classifier lives in the objective, outside DDP: its gradients are averaged too
        assert any(k.startswith("objective.terms.modality") for k in ref["grads"][0])
    for k, want in ref["weights"].items():
        got = ddp["weights"][k]
        if k.endswith("attn.in_proj_bias"):  # [query | key | value] biases
            # A key bias adds the same q·b to every logit of a query: softmax ignores it, its true gradient is 0 and
            # the computed one is rounding noise (~1e-10), which AdamW's normalisation turns into steps of up to
            # ~lr·noise/eps. Those entries agree to lr·steps only; queries and values to float tolerance.
            d = want.shape[0] // 3
            assert (got[d:2 * d] - want[d:2 * d]).abs().max() < 1e-3 * 6
            got, want = torch.cat([got[:d], got[2 * d:]]), torch.cat([want[:d], want[2 * d:]])
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=k)
    for k in ref["objective"]:
        torch.testing.assert_close(ddp["objective"][k], ref["objective"][k], rtol=1e-4, atol=1e-5, msg=k)


def test_local_loss_is_the_full_loss_in_one_process():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=-1)
    full, _ = ClipLoss()(Features(x, y, torch.tensor(10.0)))
    local, _ = ClipLoss(local_loss=True)(Features(x, y, torch.tensor(10.0), local_rows=slice(0, 6)))
    assert torch.equal(full, local)
    # two "processes" of 3 rows each: the mean of their local losses is the full loss
    halves = [ClipLoss(local_loss=True)(Features(x, y, torch.tensor(10.0), local_rows=slice(r * 3, r * 3 + 3)))[0]
              for r in range(2)]
    assert float(sum(halves) / 2) == pytest.approx(float(full), rel=1e-6)


def test_sampler_blocks_rebuild_the_single_process_batches():
    items = list(range(50))
    one = EpochSampler(items, batch_size=8, seed=7, drop_last=True)
    two = [EpochSampler(items, batch_size=8, seed=7, num_replicas=2, rank=r) for r in range(2)]
    for s in [one, *two]:
        s.set_epoch(3)
    a, (b0, b1) = list(one), [list(s) for s in two]
    assert len(a) == 48 and len(b0) == len(b1) == 24 == len(two[0])
    rebuilt = [x for i in range(6) for x in b0[4 * i:4 * i + 4] + b1[4 * i:4 * i + 4]]
    assert rebuilt == a
    one.start_step = 2  # a resumed run skips what was done, without touching the items
    assert list(one) == a[16:] and len(one) == 32
    one.set_epoch(4)
    assert list(one) != a[16:]
