"""The MoCo queue (seed 003 §3.2) under DDP: two gloo processes under torchrun, each computing keys for its half of
every global batch and gathering them (``labkit.negatives.gather_keys``) before the enqueue.

What is tested (tests/ddp_queue_worker.py runs the scenarios; the single-process reference is the same code in this
process):
* the two processes hold **bit-identical** queues (keys, pair ids, pointer) and key encoders after every step;
* the two-process run equals the one-process run on the same global batch: the queue's pair ids in the same FIFO
  order exactly, its keys, the logged numbers, the gradients and the final weights to float tolerance (each process
  encodes 8 rows instead of 16, so matrix products round differently: rtol 1e-4, as tests/test_distributed.py);
* a run stopped by SIGTERM mid-epoch (a step checkpoint) and resumed by fresh objects ends **bit for bit** where the
  uninterrupted run of the same world size does — in one process and in two.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from test_distributed import check_equivalence, torchrun_env

HERE = Path(__file__).resolve().parent


def _worker():
    sys.path.insert(0, str(HERE))
    import ddp_queue_worker

    return ddp_queue_worker


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp_queue") / "queue"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "ddp_queue_worker.py"), str(out)]
    proc = subprocess.run(cmd, cwd=out.parent, env={**torchrun_env(), "LABKIT_TEST_DEVICE": "cpu"},
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [torch.load(f"{out}.rank{r}", weights_only=False) for r in range(2)]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    worker = _worker()
    ckpt = tmp_path_factory.mktemp("one_queue") / "ckpt"
    return {name: worker.run(name, str(ckpt) if name == "moco_resumed" else None) for name in worker.SCENARIOS}


def _equal(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("scenario", ["moco", "xbm", "moco_resumed"])
def test_every_process_holds_the_same_queue(two_processes, scenario):
    r0, r1 = (p[scenario] for p in two_processes)
    assert [p["rank"] for p in two_processes] == [0, 1]
    assert len(r0["queues"]) == len(r1["queues"]) == 6
    for step, (q0, q1) in enumerate(zip(r0["queues"], r1["queues"])):
        assert _equal(q0, q1), f"step {step}: the processes' queues differ"
    assert _equal(r0["objective"], r1["objective"])  # queue buffers, pointer, key encoder: bit for bit
    assert _equal(r0["weights"], r1["weights"])


@pytest.mark.parametrize("scenario", ["moco", "xbm"])
def test_two_processes_with_a_queue_train_like_one(two_processes, one_process, scenario):
    ddp, ref = two_processes[0][scenario], one_process[scenario]
    # FIFO order of the gathered keys is the single process's: pair ids equal exactly, step by step (24 slots, 16
    # keys a step: 16, 24 (wrapped), 24 …)
    assert [len(q["pair_id"]) for q in ref["queues"]] == [16, 24, 24, 24, 24, 24]
    for step, (qa, qb) in enumerate(zip(ddp["queues"], ref["queues"])):
        assert torch.equal(qa["pair_id"], qb["pair_id"]), f"step {step}"
        for modality in ("text", "image"):
            torch.testing.assert_close(qa[modality], qb[modality], rtol=1e-4, atol=1e-5,
                                       msg=lambda m: f"step {step} {modality} keys: {m}")
    # the queue took part: from step 2 on, each query sees the 15 other batch keys plus the stored ones of other pairs
    assert ref["step_logs"][0]["contrastive/negatives"] == 15
    assert ref["step_logs"][-1]["contrastive/negatives"] > 15 + 8
    # the key encoder is an EMA of the weights: compared like them (check_equivalence's weight rule, which lets the
    # attention's key biases — a softmax-invariant direction with a rounding-noise gradient — agree to lr·steps only)
    check_equivalence({"world_size": 2, scenario: _key_encoder_as_weights(ddp)},
                      {scenario: _key_encoder_as_weights(ref)}, scenario)


def _key_encoder_as_weights(record):
    encoder = {k: v for k, v in record["objective"].items() if ".key_encoder." in k}
    rest = {k: v for k, v in record["objective"].items() if k not in encoder}
    return {**record, "weights": {**record["weights"], **encoder}, "objective": rest}


@pytest.mark.parametrize("processes", [1, 2])
def test_killed_and_resumed_queue_run_is_exact(two_processes, one_process, processes):
    runs = one_process if processes == 1 else two_processes[0]
    straight, resumed = runs["moco"], runs["moco_resumed"]
    assert len(resumed["step_logs"]) == 6  # 4 before the signal, 2 after the resume
    assert resumed["step_logs"] == straight["step_logs"]
    assert resumed["history"] == straight["history"]
    for qa, qb in zip(resumed["queues"], straight["queues"]):
        assert _equal(qa, qb)
    assert len(resumed["grads"]) == 6 and all(_equal(a, b) for a, b in zip(resumed["grads"], straight["grads"]))
    assert _equal(resumed["weights"], straight["weights"])
    assert _equal(resumed["objective"], straight["objective"])
