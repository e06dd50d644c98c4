"""Speed of the audio front end and tower (labkit.models.audio): clips/s, and the share of a training step spent on the
spectrogram.

    .venv/bin/python benchmarks/audio_frontend.py [--model labkit-audio-tiny --batch-size 64 --seconds 1.5 --steps 30]

Measured on seeded synthetic batches (noise waveforms at 16 kHz, captions of the sound world's words), CPU, fp32:

* **front end** — :class:`~labkit.models.audio.LogMel` on a (B, T) batch (one batched ``torch.stft``, the mel matmul,
  the log), no grad; and, for comparison, the same log-mel computed clip by clip with librosa
  (``librosa.power_to_db(librosa.feature.melspectrogram(...))``), what a dataset-side front end would do per item;
* **tower** — ``model.encode_audio`` (front end + CNN + projection), eval mode, no grad: inference clips/s;
* **training step** — as :func:`labkit.train.fit` steps: encode audio and text (L2-normalised), the CLIP loss,
  ``zero_grad``, ``backward``, grad-norm clipping at 1.0, AdamW over labkit's parameter groups, temperature clamp.
  The front end's own time *inside* the step is recorded by a timer around ``LogMel.forward`` (CPU ops are
  synchronous, so the wall time is the op time); the share is median(front end in step) / median(step).
  Cross-check: the same step fed precomputed log-mels (``model.audio.features``), interleaved step by step with the
  waveform step; the difference of the two medians should match the front end's time.

Medians over ``--steps`` timed calls after ``--warmup`` untimed ones. The last line is the share:
``feature extraction = N % of a training step (target <= 20 %)``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labkit.losses import clip_loss  # noqa: E402
from labkit.models.audio import count_parameters, create_audio_model  # noqa: E402
from labkit.train import LOGIT_SCALE_MAX, param_groups  # noqa: E402

WORDS = ("a dog barks twice then car passes by bell rings three times water runs siren wails getting louder "
         "high-pitched deep loud faint kettle whistles").split()


def median_ms(fn, steps: int, warmup: int) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, times


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="labkit-audio-tiny")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seconds", type=float, default=1.5)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()

    bundle = create_audio_model(a.model, seed=a.seed, clip_seconds=a.seconds)
    model, fe = bundle.model, bundle.model.audio.frontend
    g = torch.Generator().manual_seed(a.seed)
    n = int(round(a.seconds * fe.sample_rate))
    waves = 0.1 * torch.randn(a.batch_size, n, generator=g)
    words = torch.randint(len(WORDS), (a.batch_size, 8), generator=g).tolist()
    tokens = bundle.tokenizer([" ".join(WORDS[i] for i in row) for row in words])
    print(f"{a.model}: audio tower {count_parameters(model.audio):,} parameters, text tower "
          f"{count_parameters(model.text):,}; batch {a.batch_size} × {a.seconds:g} s at {fe.sample_rate} Hz "
          f"({fe.n_mels} mel bands, hop {fe.hop_length}); CPU fp32, {a.threads} threads, torch {torch.__version__}")

    # ---- front end alone, batched torch vs librosa clip by clip
    with torch.no_grad():
        fe_ms, _ = median_ms(lambda: fe(waves), a.steps, a.warmup)
    import librosa

    y = waves.numpy()

    def per_clip():
        for row in y:
            librosa.power_to_db(librosa.feature.melspectrogram(
                y=row, sr=fe.sample_rate, n_fft=fe.n_fft, hop_length=fe.hop_length, n_mels=fe.n_mels, fmin=fe.fmin,
                fmax=fe.fmax), ref=1.0, amin=1e-10, top_db=None)

    lib_ms, _ = median_ms(per_clip, max(3, a.steps // 5), 1)

    # ---- tower inference
    model.eval()
    with torch.no_grad():
        enc_ms, _ = median_ms(lambda: model.encode_audio(waves), a.steps, a.warmup)

    # ---- training step as fit does it, with a timer around the front end
    model.train()
    optimizer = torch.optim.AdamW(param_groups([model], 0.1), lr=1e-3)
    inside: list[float] = []
    original = fe.forward

    def timed_forward(wave):
        t0 = time.perf_counter()
        out = original(wave)
        inside.append(time.perf_counter() - t0)
        return out

    fe.forward = timed_forward

    def step(audio_input=None):
        audio = (model.encode_audio(waves) if audio_input is None
                 else torch.nn.functional.normalize(model.audio.features(audio_input), dim=-1))
        text = model.encode_text(tokens)
        loss = clip_loss(audio, text, model.logit_scale.exp())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, LOGIT_SCALE_MAX)

    with torch.no_grad():
        logmel = original(waves)
    for _ in range(a.warmup):
        step()
        step(logmel)
    inside.clear()
    step_times, pre_times = [], []
    for i in range(a.steps):  # interleaved, so a burst of load from elsewhere hits both variants alike
        for variant in ((None, logmel) if i % 2 == 0 else (logmel, None)):
            t0 = time.perf_counter()
            step(variant)
            (step_times if variant is None else pre_times).append(time.perf_counter() - t0)
    fe.forward = original
    step_ms, pre_ms = statistics.median(step_times) * 1e3, statistics.median(pre_times) * 1e3
    in_step = inside
    share = statistics.median(in_step) / statistics.median(step_times)

    print(f"{'':<44} {'ms / batch':>11} {'clips / s':>11}")
    print(f"{'front end, batched torch (LogMel)':<44} {fe_ms:11.2f} {a.batch_size / (fe_ms / 1e3):11.0f}")
    print(f"{'front end, librosa clip by clip':<44} {lib_ms:11.2f} {a.batch_size / (lib_ms / 1e3):11.0f}"
          f"   ({lib_ms / fe_ms:.1f}x the batched front end)")
    print(f"{'encode_audio (front end + tower), inference':<44} {enc_ms:11.2f} {a.batch_size / (enc_ms / 1e3):11.0f}")
    print(f"{'training step (audio + text, loss, AdamW)':<44} {step_ms:11.2f} {a.batch_size / (step_ms / 1e3):11.0f}")
    print(f"{'training step fed precomputed log-mels':<44} {pre_ms:11.2f} {a.batch_size / (pre_ms / 1e3):11.0f}"
          f"   (saves {step_ms - pre_ms:+.2f} ms; front end inside the step: {statistics.median(in_step) * 1e3:.2f} ms)")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    print(f"feature extraction = {100 * share:.1f} % of a training step (target <= 20 %)")


if __name__ == "__main__":
    main()
