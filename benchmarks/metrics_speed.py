"""How fast are labkit.metrics' batched retrieval recall and silhouette?

Run:  python benchmarks/metrics_speed.py [--repeats 3] [--skip-large] [--scale 1.0]

Side by side, in one run, on seeded random data with a modality offset (so the
gap is non-trivial and retrieval is neither perfect nor chance):

* ``retrieval_recall`` on 5,000 images x 25,000 captions (5 per image), d = 512,
  against two plain full-score-matrix references written out below: the full
  5k x 25k similarity matrix ranked with ``numpy.argsort`` (the textbook
  version), and the same matrix with ``torch.topk`` (a stronger baseline).
  The results must be identical.
* ``modality_silhouette`` on 10,000 x 512 points (5,000 per modality), and on
  20,000 x 512 (10,000 per modality) unless ``--skip-large``, against
  ``sklearn.metrics.silhouette_score`` given (1) the very same normalised
  float32 arrays and (2) those arrays upcast to float64 (scikit-learn's faster
  path); |difference| must be < 1e-5.

Times are the best of ``--repeats`` runs.  Peak memory is the peak increase of
the process's resident set size during one extra, untimed call, sampled every
millisecond from /proc/self/statm (so it counts torch and numpy buffers alike).
The last line is ``ratios: recall_speedup=X.XXx silhouette_speedup=Y.YYx`` where
the recall speed-up is against the argsort reference and the silhouette one is
against scikit-learn on the same float32 input, 5k per modality; the speed-ups
against the stronger baselines (topk; float64 scikit-learn) are printed above it.

Timings on a shared machine are noisy: run it while little else runs. ``--scale`` shrinks every size (the tests
run it at 0.1 to check that the benchmark still runs and agrees). Exit status 1 when a result disagrees with its
reference: a speed-up of a wrong answer is no speed-up.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
import torch
from sklearn.metrics import silhouette_score

from labkit.metrics import modality_silhouette, retrieval_recall

KS = (1, 5, 10)


# ----------------------------------------------------------------------------- data


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_retrieval_data(n_img=5000, per_image=5, d=512, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.standard_normal((n_img, d), dtype=np.float32)
    offset = np.zeros(d, dtype=np.float32)
    offset[:8] = 30.0  # the modality gap (~0.5): every caption is shifted the same way
    t2i = np.repeat(np.arange(n_img), per_image)
    rng.shuffle(t2i)
    noise = rng.standard_normal((len(t2i), d), dtype=np.float32)
    txt = img[t2i] + 6.0 * noise + offset  # noisy captions: R@1 well below 100
    return unit(img).astype(np.float32), unit(txt).astype(np.float32), t2i


def make_silhouette_data(n_per, d=512, seed=1):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n_per, d), dtype=np.float32)
    b = rng.standard_normal((n_per, d), dtype=np.float32)
    a[:, 0] += 12.0  # modality offset (gap ~0.5)
    return unit(a).astype(np.float32), unit(b).astype(np.float32)


# ------------------------------------------------------------------ references


def recall_reference_argsort(img, txt, t2i, ks=KS):
    """Textbook version: full similarity matrix, full argsort in both directions."""
    sim = img @ txt.T  # (n_img, n_txt), rows already unit norm -> cosine
    kmax = max(ks)
    top_i2t = np.argsort(-sim, axis=1)[:, :kmax]  # caption indices, best first
    top_t2i = np.argsort(-sim.T, axis=1)[:, :kmax]  # image indices, best first
    hit_i2t = t2i[top_i2t] == np.arange(len(img))[:, None]
    hit_t2i = top_t2i == t2i[:, None]
    out = {}
    for k in ks:
        out[f"i2t_R@{k}"] = 100.0 * float(hit_i2t[:, :k].any(axis=1).mean())
    for k in ks:
        out[f"t2i_R@{k}"] = 100.0 * float(hit_t2i[:, :k].any(axis=1).mean())
    out["mean_recall"] = float(np.mean(list(out.values())))
    return out


def recall_reference_topk(img, txt, t2i, ks=KS):
    """Same, with torch: full similarity matrix, top-k in both directions."""
    img_t, txt_t, t2i_t = torch.from_numpy(img), torch.from_numpy(txt), torch.from_numpy(t2i)
    sim = img_t @ txt_t.T
    kmax = max(ks)
    top_i2t = torch.topk(sim, kmax, dim=1).indices
    top_t2i = torch.topk(sim.T, kmax, dim=1).indices
    hit_i2t = t2i_t[top_i2t] == torch.arange(len(img))[:, None]
    hit_t2i = top_t2i == t2i_t[:, None]
    out = {}
    for k in ks:
        out[f"i2t_R@{k}"] = 100.0 * hit_i2t[:, :k].any(dim=1).double().mean().item()
    for k in ks:
        out[f"t2i_R@{k}"] = 100.0 * hit_t2i[:, :k].any(dim=1).double().mean().item()
    out["mean_recall"] = float(np.mean(list(out.values())))
    return out


def silhouette_reference(a, b, dtype):
    """scikit-learn on the stacked, normalised embeddings, modality as the label."""
    x = np.vstack([a, b]).astype(dtype)
    labels = np.r_[np.zeros(len(a)), np.ones(len(b))]
    return float(silhouette_score(x, labels))


# --------------------------------------------------------------------- measuring


def best_time(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_increase(fn) -> float | None:
    """Peak RSS growth (MiB) while ``fn`` runs, sampled every millisecond."""
    if not os.path.exists("/proc/self/statm"):
        return None
    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        fn()
    finally:
        done.set()
        th.join()
    peak[0] = max(peak[0], _rss_bytes())
    return (peak[0] - base) / 2**20


def _k(n: int) -> str:
    return f"{n / 1000:g}k" if n >= 1000 else str(n)


def fmt_mem(mib):
    return "n/a" if mib is None else f"{mib:,.0f} MiB"


# --------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="timings are the best of this many runs")
    ap.add_argument("--skip-large", action="store_true", help="skip the 10k-per-modality silhouette")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every data size by this (sizes >= 50)")
    args = ap.parse_args(argv)
    r = args.repeats
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; best of {r}")

    rows = []  # (task, implementation, seconds, peak memory, note)
    failures = []
    n_img = max(50, round(5000 * args.scale))

    # ---------------------------------------------------------------- retrieval
    img, txt, t2i = make_retrieval_data(n_img)
    print(f"retrieval: {len(img)} images x {len(txt)} captions ({len(txt) // len(img)} per image), d={img.shape[1]}")
    ours_fn = lambda: retrieval_recall(img, txt, t2i, ks=KS)  # noqa: E731
    t_ours, res_ours = best_time(ours_fn, r)
    m_ours = peak_rss_increase(ours_fn)
    t_topk, res_topk = best_time(lambda: recall_reference_topk(img, txt, t2i), r)
    m_topk = peak_rss_increase(lambda: recall_reference_topk(img, txt, t2i))
    t_sort, res_sort = best_time(lambda: recall_reference_argsort(img, txt, t2i), r)
    m_sort = peak_rss_increase(lambda: recall_reference_argsort(img, txt, t2i))
    diff = max(
        max(abs(res_ours[k] - res_sort[k]) for k in res_sort),
        max(abs(res_ours[k] - res_topk[k]) for k in res_topk),
    )
    same = diff < 1e-9
    if not same:
        failures.append(f"recall differs from the references by {diff:.3g} points")
    print("  ours:", {k: round(v, 2) for k, v in res_ours.items()})
    print(f"  identical to both references: {same} (max |diff| = {diff:.3g} percentage points)")
    task = f"recall {_k(len(img))} x {_k(len(txt))}"
    rows += [
        (task, "labkit retrieval_recall", t_ours, m_ours, ""),
        (task, "full matrix + np.argsort", t_sort, m_sort, f"speed-up {t_sort / t_ours:.2f}x"),
        (task, "full matrix + torch.topk", t_topk, m_topk, f"speed-up {t_topk / t_ours:.2f}x"),
    ]

    # --------------------------------------------------------------- silhouette
    sizes = [max(50, round(n * args.scale)) for n in ([5000] if args.skip_large else [5000, 10000])]
    sil_speedups = {}
    for n_per in sizes:
        a, b = make_silhouette_data(n_per)
        label = f"silhouette {_k(2 * n_per)} ({_k(n_per)}/mod.)"
        t_s, s_ours = best_time(lambda: modality_silhouette(a, b), r)
        m_s = peak_rss_increase(lambda: modality_silhouette(a, b))
        # (1) the very same float32 arrays ours gets; (2) upcast to float64 first,
        # which is scikit-learn's faster path (its float32 path upcasts in chunks)
        t_ref, s_ref = best_time(lambda: silhouette_reference(a, b, np.float32), r)
        m_ref = peak_rss_increase(lambda: silhouette_reference(a, b, np.float32))
        t_r64, s_r64 = best_time(lambda: silhouette_reference(a, b, np.float64), r)
        m_r64 = peak_rss_increase(lambda: silhouette_reference(a, b, np.float64))
        d = max(abs(s_ours - s_ref), abs(s_ours - s_r64))
        print(
            f"{label}: ours {s_ours:.8f}  sklearn {s_ref:.8f} (float32 input) {s_r64:.8f} (float64)  "
            f"max |diff| = {d:.2e} ({'OK' if d < 1e-5 else 'FAIL'} < 1e-5)"
        )
        if not d < 1e-5:
            failures.append(f"{label}: silhouette differs from scikit-learn by {d:.2e}")
        sil_speedups[n_per] = (t_ref / t_s, t_r64 / t_s)
        rows += [
            (label, "labkit modality_silhouette", t_s, m_s, ""),
            (label, "sklearn, same float32 input", t_ref, m_ref, f"speed-up {t_ref / t_s:.2f}x"),
            (label, "sklearn, float64 input", t_r64, m_r64, f"speed-up {t_r64 / t_s:.2f}x"),
        ]

    # -------------------------------------------------------------------- table
    print()
    print(f"{'task':<28} {'implementation':<28} {'seconds':>8} {'peak mem':>10}  note")
    print("-" * 92)
    for task, impl, sec, mem, note in rows:
        print(f"{task:<28} {impl:<28} {sec:>8.3f} {fmt_mem(mem):>10}  {note}")
    print()
    for n_per, (s32, s64) in sil_speedups.items():
        print(
            f"silhouette speed-up, {n_per} per modality ({2 * n_per} points): "
            f"{s32:.2f}x vs sklearn on the same float32 input, {s64:.2f}x vs sklearn on float64"
        )
    print(f"recall speed-up: {t_sort / t_ours:.2f}x vs full matrix + argsort, {t_topk / t_ours:.2f}x vs full matrix + topk")
    print(f"ratios: recall_speedup={t_sort / t_ours:.2f}x silhouette_speedup={sil_speedups[sizes[0]][0]:.2f}x")
    if failures:
        raise SystemExit("results disagree: " + "; ".join(failures))


if __name__ == "__main__":
    main()
