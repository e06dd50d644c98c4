"""One process of the DDP equivalence test (tests/test_distributed.py), started by torchrun — or imported by the test
to compute the single-process reference with the very same code.

    python -m torch.distributed.run --nproc_per_node=2 tests/ddp_worker.py OUT.pt

Each scenario trains labkit's tiny CLIP for a few steps on a small fixed dataset and records, step by step, the
logged loss, the gradients that reached the model and the objective (after DDP's averaging), and the final weights.
"""

import os
import sys

import torch
from torch.utils.data import Dataset

from labkit.losses import ClipLoss, Objective, baseline_objective, grl_objective
from labkit.models import create_model
from labkit.train import TrainConfig, fit

N_ITEMS, BATCH, EPOCHS = 48, 16, 2  # 3 global steps per epoch, 6 in all; 8 rows per process with 2 processes
SCENARIOS = ("clip", "clip_local_loss", "grl", "hinge")
DEVICE = os.environ.get("LABKIT_TEST_DEVICE", "cpu")  # "cuda": the NCCL variant (needs 2 GPUs)


class Squares(Dataset):
    """Noise images with a bright square in one of four places; the caption names the place (two paraphrases)."""

    places = ["top left", "top right", "bottom left", "bottom right"]

    def __init__(self, n=N_ITEMS):
        g = torch.Generator().manual_seed(0)
        self.images = 0.5 * torch.randn(n, 3, 32, 32, generator=g)
        for i in range(n):
            r, c = divmod(i % 4, 2)
            self.images[i, :, 16 * r:16 * r + 16, 16 * c:16 * c + 16] += 1.5

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        p = self.places[i % 4]
        return {"image": self.images[i], "captions": [f"a square {p}", f"the {p} is bright"], "pair_id": i,
                "topic": i % 4, "saliency": None, "index": i}


class GradRecorder(torch.nn.Module):
    """A weight-0 loss term whose end_step copies the gradients the optimiser just used (model and objective)."""

    def __init__(self):
        super().__init__()
        self.owner = ()  # (objective,) — a tuple, so it is not registered as a sub-module
        self.grads = []

    def forward(self, features):
        return features.image.new_zeros(())

    def end_step(self, model):
        grads = {f"model.{k}": p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
        grads.update({f"objective.{k}": p.grad.detach().clone() for k, p in self.owner[0].named_parameters()
                      if p.grad is not None})
        self.grads.append(grads)


def objective_for(name: str) -> Objective:
    if name == "grl":  # seed 000 eq. 5: the classifier's parameters live in the objective, outside DDP
        return grl_objective(0.5, 64, lambda_on="loss", seed=0, depth=2)
    if name == "hinge":  # seed 001's ANG+NP+SYM: the temperature gets no gradient at all
        return baseline_objective("angular")
    return Objective({"contrastive": ClipLoss(local_loss=name == "clip_local_loss")})


def run(name: str) -> dict:
    """Train one scenario in this process (one of several under torchrun, or alone)."""
    bundle = create_model("labkit-tiny", seed=0)
    objective = objective_for(name)
    recorder = GradRecorder()
    objective.terms["recorder"] = recorder
    objective.weights["recorder"] = 0.0
    recorder.owner = (objective,)
    step_losses = []
    config = TrainConfig(epochs=EPOCHS, batch_size=BATCH, lr=1e-3, warmup_steps=2, seed=0, device=DEVICE,
                         amp=False, progress=False)
    history = fit(bundle.model, objective, Squares(), bundle.tokenizer, config,
                  on_step=lambda step, logs: step_losses.append(dict(logs)))
    return {
        "step_logs": step_losses,
        "history": history.drop(columns=["seconds", "samples_per_s"]).to_dict("list"),
        "grads": [{k: v.cpu() for k, v in g.items()} for g in recorder.grads],
        "weights": {k: v.detach().cpu().clone() for k, v in bundle.model.state_dict().items()},
        "objective": {k: v.detach().cpu().clone() for k, v in objective.state_dict().items()},
    }


def main(out: str) -> None:
    from labkit import distributed

    info = distributed.init_from_env(DEVICE)
    assert info.world_size > 1, "start me with torchrun --nproc_per_node=2"
    results = {name: run(name) for name in SCENARIOS}
    if info.is_main:
        torch.save({"world_size": info.world_size, **results}, out)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
