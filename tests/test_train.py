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


# ------------------------------------------------------------------ the seams later papers use (no loop edits)


class _Recorder(torch.nn.Module):
    """A loss term that records the loop's calls: begin_step(step, total) before, end_step(model) after a step."""

    def __init__(self):
        super().__init__()
        self.begun, self.weights_seen = [], []

    def begin_step(self, step, total_steps):
        self.begun.append((step, total_steps))

    def end_step(self, model):
        self.weights_seen.append(model.logit_scale.detach().clone())

    def forward(self, features):
        return features.image.new_zeros(())


def test_objective_step_hooks_are_called_around_every_step():
    from labkit.losses import ClipLoss

    b = create_model("labkit-tiny", seed=0)
    before = b.model.logit_scale.detach().clone()
    rec = _Recorder()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=1e-2, warmup_steps=1, device="cpu", progress=False)
    fit(b.model, Objective({"contrastive": ClipLoss(), "rec": rec}), ColourWords(), b.tokenizer, cfg)
    total = 2 * 3  # 96 items / 32 per batch, 2 epochs
    assert rec.begun == [(s, total) for s in range(total)]
    assert len(rec.weights_seen) == total and not torch.equal(rec.weights_seen[0], before)  # after the step


class _Scaled(torch.nn.Module):
    """A term with one parameter whose gradient is 1: AdamW's first step moves it by exactly the group's lr."""

    def __init__(self, lr_scale=None):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        if lr_scale is not None:
            self.lr_scale = lr_scale

    def forward(self, features):
        return self.w.sum() + 0 * features.image.sum()


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_lr_scale_multiplies_a_terms_learning_rate(scale):
    from labkit.train import param_groups

    b = create_model("labkit-tiny", seed=0)
    term = _Scaled(scale)
    groups = param_groups([b.model, term], weight_decay=0.1)
    assert [g["lr_scale"] for g in groups][:2] == [1.0, 1.0]
    assert any(g["lr_scale"] == scale and any(p is term.w for p in g["params"]) for g in groups)
    cfg = TrainConfig(epochs=1, batch_size=96, lr=1e-3, warmup_steps=1, device="cpu", progress=False)
    fit(b.model, Objective({"t": term}), ColourWords(), b.tokenizer, cfg)
    assert term.w.item() == pytest.approx(-1e-3 * scale, rel=1e-4)  # one step of AdamW: Δw = −lr·scale


def test_lr_scale_must_be_positive():
    from labkit.train import param_groups

    with pytest.raises(ValueError, match="lr_scale"):
        param_groups([_Scaled(-1.0)], 0.1)


class _AudioText(torch.nn.Module):
    """The smallest audio–text model: encode_audio / encode_text / logit_scale, counting its calls."""

    def __init__(self):
        super().__init__()
        self.audio = torch.nn.Linear(8, 4)
        self.text = torch.nn.Embedding(50, 4)
        self.logit_scale = torch.nn.Parameter(torch.tensor(2.0))
        self.calls = {"audio": 0, "image": 0}

    def encode_audio(self, x, normalize=False):
        self.calls["audio"] += 1
        z = self.audio(x)
        return torch.nn.functional.normalize(z, dim=-1) if normalize else z

    def encode_image(self, x, normalize=False):  # pragma: no cover - must not be called for audio batches
        self.calls["image"] += 1
        raise AssertionError("encode_image called on an audio batch")

    def encode_text(self, tokens, normalize=False):
        z = self.text(tokens).mean(1)
        return torch.nn.functional.normalize(z, dim=-1) if normalize else z


class _Clips(Dataset):
    def __init__(self, n=32):
        self.x = torch.randn(n, 8, generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"audio": self.x[i], "captions": [f"clip {i % 7}"], "pair_id": i, "topic": i % 2, "index": i}

    def captions_flat(self):
        return [f"clip {i % 7}" for i in range(len(self))], list(range(len(self)))


def test_audio_batches_go_through_encode_audio():
    from labkit.evaluate import embed_dataset

    model = _AudioText()
    tok = lambda texts: torch.tensor([[int(t.split()[-1]) + 1] * 3 for t in texts])  # noqa: E731
    fit(model, Objective(), _Clips(), tok, TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False))
    assert model.calls == {"audio": 4, "image": 0}
    emb = embed_dataset(model, _Clips(), tok, device="cpu")
    assert emb.image.shape == (32, 4) and emb.text.shape == (32, 4) and model.calls["image"] == 0


def test_sgd_and_a_fixed_temperature():
    import math

    b = create_model("labkit-tiny", seed=0)
    cfg = TrainConfig(epochs=1, batch_size=32, lr=1e-2, optimizer="sgd", momentum=0.9, temperature=0.01,
                      warmup_steps=1, device="cpu", progress=False)
    before = {k: v.clone() for k, v in b.model.state_dict().items()}
    hist = fit(b.model, Objective(), ColourWords(), b.tokenizer, cfg)
    assert b.model.logit_scale.item() == pytest.approx(math.log(100.0))  # fixed at 1/τ = 100, never trained
    assert not b.model.logit_scale.requires_grad and hist["logit_scale"].tolist() == pytest.approx([100.0])
    assert any(not torch.equal(before[k], v) for k, v in b.model.state_dict().items() if k != "logit_scale")
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="temperature"):
        TrainConfig(temperature=0.001)


def test_epoch_order_is_labkit_0_1s_order():
    """The seeded order of labkit 0.1 (DataLoader(shuffle=True, generator=g) iterated through tqdm.auto, which makes
    an extra iterator) is kept bit for bit by EpochSampler, so every seed trains on the same batches as before."""
    from tqdm.auto import tqdm
    from torch.utils.data import DataLoader

    from labkit.train import EpochSampler

    items = list(range(50))
    for seed, epoch in [(0, 0), (3 * 100_003, 1), (7, 5)]:
        g = torch.Generator()
        loader = DataLoader(items, batch_size=8, shuffle=True, generator=g, drop_last=True)
        g.manual_seed(seed + epoch)
        old = [x for batch in tqdm(loader, disable=True) for x in batch.tolist()]
        sampler = EpochSampler(items, batch_size=8, seed=seed, drop_last=True)
        sampler.set_epoch(epoch)
        assert list(sampler) == old


def test_sigint_mid_epoch_writes_a_step_checkpoint_and_resume_is_exact(tmp_path):
    import os
    import signal

    from labkit.train import TrainingInterrupted

    straight, h_straight = _run(epochs=2)
    b = create_model("labkit-tiny", seed=0)
    cfg = TrainConfig(epochs=2, batch_size=32, lr=1e-3, warmup_steps=2, seed=0, device="cpu", progress=False,
                      checkpoint_dir=str(tmp_path))
    interrupt = lambda step, logs: os.kill(os.getpid(), signal.SIGINT) if step == 3 else None  # noqa: E731
    with pytest.raises(TrainingInterrupted, match="SIGINT received: stopped after step 1 of epoch 2"):
        fit(b.model, Objective(), ColourWords(), b.tokenizer, cfg, on_step=interrupt)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and state["partial"]["step"] == 1
    resumed, h_resumed = _run(tmp_path, epochs=2, resume=True, model_seed=123)
    cols = [c for c in h_straight if c not in ("seconds", "samples_per_s")]
    assert h_resumed[cols].equals(h_straight[cols])
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))
