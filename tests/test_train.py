"""labkit.train: it learns, it is deterministic, resume equals an uninterrupted run, checkpoints are atomic."""

import pytest
import torch
from torch.utils.data import Dataset

from labkit.io import load_checkpoint
from labkit.losses import Objective
from labkit.models import create_model
from labkit.train import TrainConfig, cosine_lr, fit, resolve_device

WORDS = ["red circle", "blue square", "green cross", "yellow ring"]


class ColourWords(Dataset):
    """Four classes: a solid colour image and a caption naming it (two paraphrases each)."""

    colours = torch.tensor([[1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 1, 0]], dtype=torch.float32)

    def __init__(self, n=96, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % 4
        noise = 0.3 * torch.randn(n, 3, 32, 32, generator=g)
        self.images = self.colours[self.labels][:, :, None, None] + noise

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        w = WORDS[int(self.labels[i])]
        return {"image": self.images[i], "captions": [f"a {w}", f"the {w} here"], "pair_id": i,
                "topic": int(self.labels[i]), "saliency": None, "index": i}


def _run(tmp_path=None, epochs=2, resume=False, seed=0, model_seed=0):
    b = create_model("labkit-tiny", seed=model_seed)
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=1e-3, warmup_steps=2, seed=seed, device="cpu",
                      progress=False, checkpoint_dir=str(tmp_path) if tmp_path else None)
    hist = fit(b.model, Objective(), ColourWords(), b.tokenizer, cfg, resume=resume)
    return b.model, hist


def test_same_seed_same_numbers():
    m1, h1 = _run(seed=5)
    m2, h2 = _run(seed=5)
    assert h1["loss"].tolist() == h2["loss"].tolist()
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    _, h3 = _run(seed=6)
    assert h3["loss"].tolist() != h1["loss"].tolist()


class Crash(RuntimeError):
    pass


class CrashingColourWords(ColourWords):
    """Raises in the middle of epoch 3, like a killed job."""

    def __init__(self, crash_after_items):
        super().__init__()
        self.left = crash_after_items

    def __getitem__(self, i):
        self.left -= 1
        if self.left < 0:
            raise Crash("simulated crash")
        return super().__getitem__(i)


def test_resume_equals_uninterrupted_run(tmp_path):
    straight, h_straight = _run(epochs=3)
    b = create_model("labkit-tiny", seed=0)
    cfg = TrainConfig(epochs=3, batch_size=32, lr=1e-3, warmup_steps=2, seed=0, device="cpu", progress=False,
                      checkpoint_dir=str(tmp_path))
    with pytest.raises(Crash):
        fit(b.model, Objective(), CrashingColourWords(crash_after_items=2 * 96 + 40), b.tokenizer, cfg)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    # A new process resumes; its model starts from another init: everything must come from the checkpoint.
    resumed, h_resumed = _run(tmp_path, epochs=3, resume=True, model_seed=123)
    assert len(h_resumed) == 3
    assert h_resumed["loss"].tolist() == h_straight["loss"].tolist()
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))


def test_loss_decreases_and_history_columns(tmp_path):
    _, hist = _run(epochs=4)
    assert hist["loss"].iloc[-1] < hist["loss"].iloc[0]
    assert {"epoch", "loss", "loss/contrastive", "lr", "logit_scale", "seconds", "samples_per_s"} <= set(hist)


def test_evaluate_hook_and_eval_every():
    b = create_model("labkit-tiny", seed=0)
    calls = []

    def evaluate(model, epoch):
        assert not model.training and not torch.is_grad_enabled()
        calls.append(epoch)
        return {"probe": float(epoch)}

    cfg = TrainConfig(epochs=3, batch_size=32, eval_every=2, device="cpu", progress=False)
    hist = fit(b.model, Objective(), ColourWords(), b.tokenizer, cfg, evaluate=evaluate)
    assert calls == [2, 3]
    assert hist["probe"].isna().tolist() == [True, False, False]


def test_no_partial_checkpoint_left(tmp_path):
    _run(tmp_path, epochs=1)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_cosine_schedule():
    assert cosine_lr(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert cosine_lr(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert cosine_lr(100, 100, 1.0, 10) == pytest.approx(0.0)


def test_config_and_device_validation():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0)
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_amp_step_runs():
    b = create_model("labkit-tiny", seed=0)
    cfg = TrainConfig(epochs=1, batch_size=32, device="cuda", amp=True, progress=False)
    hist = fit(b.model, Objective(), ColourWords(), b.tokenizer, cfg)
    assert torch.isfinite(torch.tensor(hist["loss"].tolist())).all()
    assert next(b.model.parameters()).device.type == "cuda"
