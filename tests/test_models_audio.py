"""The audio–text model: the log-mel front end against librosa, the towers, the seams fit/evaluate use."""

import json

import librosa
import numpy as np
import open_clip
import pytest
import torch

from labkit.data import make_sound_world
from labkit.evaluate import embed_dataset
from labkit.io import save_checkpoint
from labkit.losses import Objective, grl_objective
from labkit.models import create_model, list_labkit_models
from labkit.models.audio import (AUDIO_CONFIG_DIR, ConvAudioEncoder, LogMel, audio_config, create_audio_model,
                                 list_audio_models, log_mel_spectrogram)
from labkit.train import TrainConfig, fit


@pytest.mark.parametrize("n_fft, hop, n_mels, fmin, fmax", [(512, 160, 64, 50.0, None), (512, 320, 32, 50.0, None),
                                                             (1024, 256, 80, 0.0, 7000.0)])
def test_log_mel_equals_librosa(n_fft, hop, n_mels, fmin, fmax):
    """Same STFT conventions (periodic Hann, centred, zero padding), librosa's Slaney filterbank, power_to_db with
    ref=1, amin=1e-10 and no top_db: equal to float32 round-off."""
    rng = np.random.default_rng(0)
    t = np.arange(24000) / 16000
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    y[:2000] = 0.0  # a stretch of digital silence exercises the amin floor
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=16000, n_fft=n_fft, hop_length=hop, n_mels=n_mels,
                                                             fmin=fmin, fmax=fmax), ref=1.0, amin=1e-10, top_db=None)
    frontend = LogMel(16000, n_fft, hop, n_mels, fmin, fmax)
    out = frontend(torch.from_numpy(y)).numpy()
    assert out.shape == ref.shape == (n_mels, 1 + len(y) // hop)
    # dB: float32 round-off of the STFT only — < 0.001 dB wherever the band holds more than -90 dB of power, < 0.01 dB
    # in the near-silent bands at the edge of the zeroed stretch (librosa's STFT keeps a little more precision there)
    assert np.abs(out - ref)[ref > -90].max() < 1e-3 and np.abs(out - ref).max() < 1e-2
    batch = frontend(torch.from_numpy(np.stack([y, y[::-1].copy()])))
    assert batch.shape == (2, *ref.shape) and torch.allclose(batch[0], torch.from_numpy(out))


def test_log_mel_spectrogram_by_hand_on_a_small_signal():
    """The functional form (notebook 05's exercise reference) on 8 samples, 4-point frames, hop 4, 2 bands, against
    a loop: zero-padded centred frames, periodic Hann, |DFT|², M @ power, 10 log10 max(·, amin)."""
    x = torch.tensor([0.0, 1.0, 0.5, -0.5, 0.25, 0.0, -1.0, 0.0])
    m = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])
    out = log_mel_spectrogram(x, m, n_fft=4, hop_length=4)
    padded = np.concatenate([np.zeros(2), x.numpy(), np.zeros(2)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(4) / 4)
    expected = np.zeros((2, 3))
    for t in range(3):
        frame = padded[4 * t:4 * t + 4] * window
        power = np.abs([sum(frame[n] * np.exp(-2j * np.pi * k * n / 4) for n in range(4)) for k in range(3)]) ** 2
        expected[:, t] = 10 * np.log10(np.maximum(m.numpy() @ power, 1e-10))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-4)
    frontend = LogMel(16000, 512, 160, 16)
    y = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(frontend(y), log_mel_spectrogram(y, frontend.mel_basis, 512, 160))


def test_log_mel_filterbank_is_librosas_and_not_in_the_state_dict():
    frontend = LogMel(16000, 512, 160, 64, 50.0)
    expected = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=50.0, htk=False, norm="slaney")
    assert np.array_equal(frontend.mel_basis.numpy(), expected.astype(np.float32))
    assert frontend.state_dict() == {}  # derived from the config, so checkpoints do not carry it
    with pytest.raises(ValueError, match="waveform"):
        frontend(torch.zeros(1, 2, 100))


def test_shipped_audio_configs():
    names = list_audio_models()
    assert {"labkit-audio-tiny", "labkit-audio-cnn14"} <= set(names)
    for name in names:
        cfg = audio_config(name)
        assert cfg["text_model"] in open_clip.list_models()
    # audio configs live in a sub-folder: open_clip's image-text registry (and labkit's list) stay image-text only
    assert not set(names) & set(list_labkit_models()) and not set(names) & set(open_clip.list_models())
    cnn14 = json.loads((AUDIO_CONFIG_DIR / "labkit-audio-cnn14.json").read_text())["audio_cfg"]
    assert cnn14["channels"] == [64, 128, 256, 512, 1024, 2048] and cnn14["convs_per_block"] == 2


def test_tiny_model_encodes_normalised_embeddings_and_shares_the_text_tower_init():
    bundle = create_audio_model("labkit-audio-tiny", seed=0)
    model = bundle.model
    audio = model.encode_audio(0.1 * torch.randn(3, 16000))
    text = model.encode_text(bundle.tokenizer(["a dog barks twice", "water runs", "a bell rings"]))
    assert audio.shape == text.shape == (3, 64)
    assert torch.allclose(audio.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert model.logit_scale.exp().item() == pytest.approx(1 / 0.07, rel=1e-4)
    image_clip = create_model("labkit-tiny", seed=0).model.state_dict()
    text_state = model.text.state_dict()
    assert text_state and all(torch.equal(image_clip[k], v) for k, v in text_state.items())
    assert not any(k.startswith("text.visual") for k in model.state_dict())
    assert bundle.sample_rate == 16000 and bundle.preprocess(torch.ones(10)).shape == (int(16000 * bundle.clip_seconds),)
    with pytest.raises(ValueError, match="encode_audio"):
        model.encode_audio(torch.zeros(16000))


def test_seed_fixes_the_audio_tower_whatever_the_global_rng():
    torch.manual_seed(123)
    a = create_audio_model(seed=5).model.audio.state_dict()
    torch.manual_seed(321)
    b = create_audio_model(seed=5).model.audio.state_dict()
    c = create_audio_model(seed=6).model.audio.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], c[k]) for k in a)


def test_cnn14_layout_builds_and_runs():
    enc = ConvAudioEncoder(32, channels=[64, 128, 256, 512, 1024, 2048], convs_per_block=2, dropout=0.2)
    n_params = sum(p.numel() for p in enc.parameters())
    assert 75e6 < n_params < 85e6  # CNN14's ~80 M (its convolutions; the head here is ours)
    enc.eval()
    with torch.no_grad():
        assert enc(torch.zeros(1, 16000)).shape == (1, 32)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no-such-audio"):
        create_audio_model("no-such-audio")
    with pytest.raises(ValueError, match="n_melz"):
        create_audio_model(n_melz=3)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        create_audio_model(checkpoint=tmp_path / "missing.pt")
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(wrong, {"state_dict": create_audio_model(channels=[4, 8]).model.state_dict()})
    with pytest.raises(ValueError, match="wrong.pt"):
        create_audio_model(checkpoint=wrong)


def test_fit_and_embed_dataset_route_audio_and_resume_from_a_checkpoint(tmp_path):
    """The seams: fit trains through encode_audio (with the GRL term), embed_dataset embeds audio items, and a
    checkpoint written by fit loads back into create_audio_model. Same seed on CPU → same numbers."""
    world = make_sound_world(n_clips=48, seed=0, clip_seconds=1.0)
    runs = []
    for _ in range(2):
        bundle = create_audio_model(seed=0, clip_seconds=1.0)
        before = {k: v.clone() for k, v in bundle.model.audio.state_dict().items()}
        history = fit(bundle.model, grl_objective(1.0, 64, seed=0), world.train, bundle.tokenizer,
                      TrainConfig(epochs=2, batch_size=16, lr=1e-3, device="cpu", progress=False, warmup_steps=1,
                                  checkpoint_dir=str(tmp_path)))
        runs.append((bundle, history))
        assert any(not torch.equal(before[k], v) for k, v in bundle.model.audio.state_dict().items())
        assert "modality/accuracy" in history
    assert runs[0][1]["loss"].tolist() == runs[1][1]["loss"].tolist()
    emb = embed_dataset(runs[0][0].model, world.test, runs[0][0].tokenizer, device="cpu")
    assert emb.image.shape == (len(world.test), 64) and emb.text.shape == (5 * len(world.test), 64)
    loaded = create_audio_model(checkpoint=tmp_path / "last.pt", clip_seconds=1.0)
    emb2 = embed_dataset(loaded.model, world.test, loaded.tokenizer, device="cpu")
    assert np.allclose(emb.image, emb2.image, atol=1e-6) and np.allclose(emb.text, emb2.text, atol=1e-6)


def test_sgd_optimizer_trains_the_audio_model():
    world = make_sound_world(n_clips=32, seed=1, clip_seconds=1.0)
    bundle = create_audio_model(seed=0, clip_seconds=1.0)
    history = fit(bundle.model, Objective(), world.train, bundle.tokenizer,
                  TrainConfig(epochs=1, batch_size=12, lr=5e-3, optimizer="sgd", momentum=0.9, device="cpu",
                              progress=False, warmup_steps=1))
    assert np.isfinite(history["loss"]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_front_end_runs_in_float32_under_autocast_on_cuda():
    frontend = LogMel().cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = frontend(torch.randn(2, 16000, device="cuda"))
    assert out.dtype == torch.float32
