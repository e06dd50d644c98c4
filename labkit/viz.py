"""Pictures of the modality gap: joint 2-D views of image and text embeddings.

Seed paper 000 (§3, Fig. 2) shows the gap by projecting both modalities of a
CLIP/CLAP embedding space *together* to 2-D with PCA, t-SNE or UMAP: if the two
clouds land in different places, the modalities occupy different regions.

Conventions
-----------
* ``a`` are the image embeddings, ``b`` the text embeddings (``(n, d)`` arrays or
  tensors; row ``i`` of ``a`` and of ``b`` form a pair when both have the same
  length).  Rows are L2-normalised first, exactly as in :mod:`labkit.metrics`,
  and validated the same way (``ValueError`` on NaN/inf, zero rows, ...).
* Projections are *joint*: stack ``[a; b]``, fit one projection, split again.
* Every projection is seeded and deterministic for a given ``seed``.
* Plot functions return a :class:`matplotlib.figure.Figure`; :func:`save_figure`
  writes it atomically and closes it.
* Styling uses seaborn's ``whitegrid``/``notebook`` theme inside a context
  manager, so importing or calling this module never changes global rcParams.
* Backend: if no matplotlib backend has been chosen yet (no ``MPLBACKEND``, not
  running inside a Jupyter kernel), the non-interactive ``Agg`` backend is
  selected at import so that scripts and tests work headless; notebooks keep
  their inline backend.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np


def _choose_backend() -> None:
    if os.environ.get("MPLBACKEND") or "ipykernel" in sys.modules:
        return
    get = getattr(matplotlib.rcParams, "_get_backend_or_none", None)
    if get is not None and get() is None:
        matplotlib.use("Agg")


_choose_backend()

import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)
import seaborn as sns  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from labkit.metrics._validate import _pair, _positive_int  # noqa: E402
from labkit.io import atomic_write  # noqa: E402

__all__ = [
    "project_2d",
    "plot_modalities",
    "plot_projection_grid",
    "plot_metric_curve",
    "save_figure",
]

METHODS = ("pca", "tsne", "umap")
_METHOD_TITLES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
_MODALITY_MARKERS = ("o", "^")


@contextlib.contextmanager
def _style():
    """seaborn whitegrid/notebook theme, restored on exit (no global clobbering)."""
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        yield


# ----------------------------------------------------------------------------
# projections
# ----------------------------------------------------------------------------


def _check_method(method: str) -> str:
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method.lower()


def _project(a, b, method: str, seed: int, **kwargs):
    """Return (a2, b2, info); info["explained_variance_ratio"] for PCA."""
    method = _check_method(method)
    a, b = _pair(a, b, "a", "b")
    x = np.vstack([a, b])
    n = len(x)
    info: dict = {"method": method}
    if method == "pca":
        from sklearn.decomposition import PCA

        if n < 2:
            raise ValueError("PCA needs at least 2 points in total (a and b together)")
        pca = PCA(n_components=2, svd_solver="full", random_state=seed, **kwargs)
        if x.shape[1] < 2:
            raise ValueError("a and b must have at least 2 embedding dimensions for a 2-D projection")
        y = pca.fit_transform(x)
        info["explained_variance_ratio"] = tuple(float(v) for v in pca.explained_variance_ratio_)
    elif method == "tsne":
        if n < 4:
            raise ValueError("t-SNE needs at least 4 points in total (a and b together)")
        # perplexity must stay well below the number of points
        perplexity = float(kwargs.pop("perplexity", 30.0))
        perplexity = max(1.0, min(perplexity, (n - 1) / 3.0))
        info["perplexity"] = perplexity
        try:
            import openTSNE
        except ImportError:  # pragma: no cover - openTSNE is a dependency
            openTSNE = None
        if openTSNE is not None:
            kwargs.setdefault("n_jobs", 1)  # single-threaded: bit-for-bit reproducible
            kwargs.setdefault("verbose", False)
            tsne = openTSNE.TSNE(n_components=2, perplexity=perplexity, random_state=seed, **kwargs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = np.asarray(tsne.fit(x))
        else:  # pragma: no cover
            from sklearn.manifold import TSNE

            kwargs.setdefault("init", "pca")
            y = TSNE(n_components=2, perplexity=perplexity, random_state=seed, **kwargs).fit_transform(x)
    else:  # umap
        if n < 4:
            raise ValueError("UMAP needs at least 4 points in total (a and b together)")
        import umap

        kwargs["n_neighbors"] = max(2, min(int(kwargs.get("n_neighbors", 15)), n - 1))
        if n <= kwargs["n_neighbors"] + 2:
            kwargs.setdefault("init", "random")  # spectral init is unreliable on tiny graphs
        with warnings.catch_warnings():
            # "n_jobs value 1 overridden to 1 by setting random_state" and friends
            warnings.simplefilter("ignore")
            y = umap.UMAP(n_components=2, random_state=seed, **kwargs).fit_transform(x)
    y = np.asarray(y, dtype=np.float64)
    return y[: len(a)], y[len(a) :], info


def project_2d(a, b, method: str = "pca", seed: int = 0, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Joint 2-D projection of both modalities: stack ``[a; b]``, project, split.

    ``method``:
      * ``"pca"`` -- scikit-learn PCA (exact SVD; deterministic, signs fixed by
        scikit-learn's ``svd_flip``).
      * ``"tsne"`` -- openTSNE (single-threaded by default for reproducibility;
        scikit-learn's TSNE only if openTSNE cannot be imported).  The
        perplexity (default 30) is lowered to ``(n - 1) / 3`` for small ``n``.
      * ``"umap"`` -- umap-learn; ``n_neighbors`` (default 15) is capped at ``n - 1``.

    Rows are L2-normalised first.  Extra ``kwargs`` go to the projector.  The
    result is deterministic for a given ``seed``.

    Returns ``(a2, b2)``: float arrays of shapes ``(len(a), 2)`` and ``(len(b), 2)``.
    """
    a2, b2, _ = _project(a, b, method, seed, **kwargs)
    return a2, b2


# ----------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------


def _axis_labels(info: dict) -> tuple[str, str]:
    method = info["method"]
    if method == "pca":
        r1, r2 = info["explained_variance_ratio"]
        return f"PC1 ({100 * r1:.1f}% of variance)", f"PC2 ({100 * r2:.1f}% of variance)"
    name = _METHOD_TITLES[method]
    return f"{name} 1", f"{name} 2"


def _topic_arrays(topics, n_a: int, n_b: int):
    t = np.asarray(topics)
    if t.ndim != 1:
        raise ValueError(f"topics must be 1-D, got ndim={t.ndim}")
    if len(t) == n_a + n_b:
        return t[:n_a], t[n_a:]
    if n_a == n_b and len(t) == n_a:  # one topic per pair
        return t, t
    raise ValueError(
        f"topics must have len(a) + len(b) = {n_a + n_b} entries"
        + (f" or one per pair ({n_a})" if n_a == n_b else "")
        + f", got {len(t)}"
    )


def _topic_name(topic, topic_names) -> str:
    if topic_names is None:
        return str(topic)
    if isinstance(topic_names, Mapping):
        return str(topic_names.get(topic, topic))
    try:
        return str(topic_names[int(topic)])
    except (ValueError, TypeError, IndexError):
        return str(topic)


def _draw(ax, a2, b2, info, pair_lines, topics, topic_names, labels, title, legend=True):
    n_a, n_b = len(a2), len(b2)
    if pair_lines:
        k = min(int(pair_lines), n_a)
        segments = np.stack([a2[:k], b2[:k]], axis=1)
        ax.add_collection(
            LineCollection(segments, colors="0.45", linewidths=0.6, alpha=0.6, zorder=1, label="_pairs")
        )
    size = 18 if n_a + n_b > 2000 else 30
    if topics is None:
        palette = sns.color_palette("deep", 2)
        for m, (pts, lab) in enumerate(((a2, labels[0]), (b2, labels[1]))):
            ax.scatter(
                pts[:, 0], pts[:, 1], s=size, color=palette[m], marker=_MODALITY_MARKERS[m],
                alpha=0.75, linewidths=0, label=lab, zorder=2,
            )
        if legend:
            ax.legend(loc="best", frameon=True)
    else:
        ta, tb = _topic_arrays(topics, n_a, n_b)
        uniq = list(dict.fromkeys(np.concatenate([ta, tb]).tolist()))
        try:
            uniq = sorted(uniq)
        except TypeError:
            pass
        palette = sns.color_palette("tab10" if len(uniq) <= 10 else "husl", len(uniq))
        colour = {t: palette[i] for i, t in enumerate(uniq)}
        for m, (pts, tt) in enumerate(((a2, ta), (b2, tb))):
            ax.scatter(
                pts[:, 0], pts[:, 1], s=size, c=[colour[t] for t in tt.tolist()],
                marker=_MODALITY_MARKERS[m], alpha=0.8, linewidths=0, zorder=2,
                label=labels[m],
            )
        if legend:
            handles = [
                Line2D([], [], linestyle="", marker=_MODALITY_MARKERS[m], color="0.3", label=labels[m])
                for m in range(2)
            ] + [
                Line2D([], [], linestyle="", marker="s", color=colour[t], label=_topic_name(t, topic_names))
                for t in uniq
            ]
            ax.legend(handles=handles, loc="best", frameon=True, fontsize="small")
    xlabel, ylabel = _axis_labels(info)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else f"{labels[0]} and {labels[1]} embeddings ({_METHOD_TITLES[info['method']]})")
    ax.autoscale_view()


def _check_common(a, b, pair_lines, labels):
    if isinstance(pair_lines, bool) or not isinstance(pair_lines, (int, np.integer)) or pair_lines < 0:
        raise ValueError(f"pair_lines must be a non-negative integer, got {pair_lines!r}")
    if len(labels) != 2:
        raise ValueError(f"labels must name the two modalities, got {labels!r}")
    if pair_lines and len(a) != len(b):
        raise ValueError(
            "pair_lines needs paired rows: len(a) must equal len(b) "
            f"(got {len(a)} and {len(b)})"
        )


def plot_modalities(
    a,
    b,
    method: str = "pca",
    ax=None,
    pair_lines: int = 0,
    topics=None,
    topic_names=None,
    labels: Sequence[str] = ("image", "text"),
    title: str | None = None,
    seed: int = 0,
):
    """Scatter of a joint 2-D projection (:func:`project_2d`) of both modalities.

    * Without ``topics``: one colour (and marker) per modality.
    * With ``topics`` (``len(a) + len(b)`` labels, ``a`` first, or one per pair
      when ``len(a) == len(b)``): colour by topic, marker by modality;
      ``topic_names`` (a sequence indexed by topic id, or a mapping) names them
      in the legend.
    * ``pair_lines=k`` draws thin grey lines between the first ``k`` pairs
      (row ``i`` of ``a`` with row ``i`` of ``b``; needs ``len(a) == len(b)``).

    Axis labels name the method; for PCA they give each axis' share of the
    variance.  Draws on ``ax`` if given, otherwise on a new figure.
    Returns the :class:`~matplotlib.figure.Figure`.
    """
    _check_method(method)
    a, b = _pair(a, b, "a", "b")
    _check_common(a, b, pair_lines, labels)
    if topics is not None:
        _topic_arrays(topics, len(a), len(b))  # validate before the (slow) projection
    a2, b2, info = _project(a, b, method, seed)
    with _style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(6.0, 5.0), layout="constrained")
        else:
            fig = ax.figure
        _draw(ax, a2, b2, info, pair_lines, topics, topic_names, labels, title)
    return fig


def plot_projection_grid(
    a,
    b,
    methods: Sequence[str] = ("pca", "tsne", "umap"),
    pair_lines: int = 0,
    topics=None,
    topic_names=None,
    labels: Sequence[str] = ("image", "text"),
    title: str | None = None,
    seed: int = 0,
    panel_size: float = 4.5,
):
    """One row of panels, one per projection method (as in seed 000, Fig. 2).

    Same options as :func:`plot_modalities`; ``title`` becomes the figure's
    super-title and each panel is titled by its method.  The legend is drawn in
    the first panel only.  Returns the Figure.
    """
    if isinstance(methods, str):
        methods = (methods,)
    methods = [_check_method(m) for m in methods]
    if not methods:
        raise ValueError("methods is empty")
    a, b = _pair(a, b, "a", "b")
    _check_common(a, b, pair_lines, labels)
    if topics is not None:
        _topic_arrays(topics, len(a), len(b))
    with _style():
        fig, axes = plt.subplots(
            1, len(methods), figsize=(panel_size * len(methods), panel_size), layout="constrained",
            squeeze=False,
        )
        for i, (m, ax) in enumerate(zip(methods, axes[0])):
            a2, b2, info = _project(a, b, m, seed)
            _draw(ax, a2, b2, info, pair_lines, topics, topic_names, labels, _METHOD_TITLES[m], legend=i == 0)
        if title is not None:
            fig.suptitle(title)
    return fig


def plot_metric_curve(
    x,
    ys: Mapping[str, tuple],
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    ax=None,
):
    """Lines with ±std bands, e.g. a metric against the GRL weight λ (seed 000, Fig. 3).

    ``ys`` maps a series name to ``(mean, std)`` arrays of the same length as
    ``x`` (``std`` may be ``None`` for no band).  Returns the Figure.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"x must be a non-empty 1-D array, got shape {x.shape}")
    if not isinstance(ys, Mapping) or not ys:
        raise ValueError("ys must be a non-empty dict name -> (mean, std)")
    series = []
    for name, val in ys.items():
        try:
            mean, std = val
        except (TypeError, ValueError):
            raise ValueError(f"ys[{name!r}] must be a (mean, std) pair") from None
        mean = np.asarray(mean, dtype=np.float64)
        if mean.shape != x.shape:
            raise ValueError(f"ys[{name!r}] mean has shape {mean.shape}, expected {x.shape} like x")
        if std is not None:
            std = np.asarray(std, dtype=np.float64)
            if std.shape != x.shape:
                raise ValueError(f"ys[{name!r}] std has shape {std.shape}, expected {x.shape} like x")
        series.append((str(name), mean, std))
    with _style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(6.0, 4.0), layout="constrained")
        else:
            fig = ax.figure
        palette = sns.color_palette("deep", len(series))
        for (name, mean, std), colour in zip(series, palette):
            ax.plot(x, mean, marker="o", markersize=4, color=colour, label=name)
            if std is not None:
                ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title is not None:
            ax.set_title(title)
        ax.legend(loc="best", frameon=True)
    return fig


def save_figure(fig, path, dpi: int = 120, close: bool = True) -> Path:
    """Write ``fig`` to ``path`` atomically (see :func:`labkit.io.atomic_write`), creating parent folders.

    The format follows the file suffix (PNG when there is none or it is ``.png``). The figure is closed
    afterwards unless ``close=False`` (a notebook that still wants to show it). Returns the path written.
    """
    dpi = _positive_int(dpi, "dpi")
    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight"))
    finally:
        if close:
            plt.close(fig)
    return path
