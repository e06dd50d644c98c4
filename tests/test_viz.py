"""labkit.viz: projections are finite, shaped and seeded; plots contain what they should."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402

from labkit import viz  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 16)) + 1.0
    b = rng.normal(size=(30, 16)) - 1.0
    return a, b


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def n_points(ax):
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def n_pair_lines(ax):
    return sum(len(c.get_segments()) for c in ax.collections if isinstance(c, LineCollection))


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_project_2d_shapes_finite_deterministic(pair, method):
    a, b = pair
    b = b[:22]  # modalities of different sizes
    a2, b2 = viz.project_2d(a, b, method=method, seed=3)
    assert a2.shape == (30, 2) and b2.shape == (22, 2)
    assert np.isfinite(a2).all() and np.isfinite(b2).all()
    a3, b3 = viz.project_2d(a, b, method=method, seed=3)
    np.testing.assert_array_equal(a2, a3)
    np.testing.assert_array_equal(b2, b3)


def test_pca_projection_matches_svd(pair):
    a, b = pair
    x = np.vstack([a, b])
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    ref = xc @ vt[:2].T
    a2, b2 = viz.project_2d(*pair, method="pca")
    got = np.vstack([a2, b2])
    for k in range(2):  # equal up to the sign of each axis
        assert min(np.abs(got[:, k] - ref[:, k]).max(), np.abs(got[:, k] + ref[:, k]).max()) < 1e-8


def test_tsne_small_n_adapts_perplexity():
    rng = np.random.default_rng(1)
    a2, b2 = viz.project_2d(rng.normal(size=(4, 5)), rng.normal(size=(3, 5)), method="tsne")
    assert a2.shape == (4, 2) and np.isfinite(np.vstack([a2, b2])).all()


def test_project_2d_rejects_bad_input(pair):
    a, b = pair
    with pytest.raises(ValueError, match="method"):
        viz.project_2d(a, b, method="lda")
    with pytest.raises(ValueError, match="a contains NaN/inf"):
        viz.project_2d(np.full_like(a, np.nan), b)
    with pytest.raises(ValueError, match="same embedding dimension"):
        viz.project_2d(a, b[:, :4])


def test_plot_modalities_points_lines_labels(pair):
    a, b = pair
    fig = viz.plot_modalities(a, b, method="pca", pair_lines=7, title="gap")
    ax = fig.axes[0]
    assert isinstance(fig, matplotlib.figure.Figure)
    assert n_points(ax) == 60
    assert n_pair_lines(ax) == 7
    assert ax.get_xlabel().startswith("PC1 (") and "variance" in ax.get_xlabel()
    assert ax.get_ylabel().startswith("PC2 (")
    assert ax.get_title() == "gap"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["image", "text"]


def test_plot_modalities_topics_and_given_axes(pair):
    a, b = pair
    fig, ax = plt.subplots()
    topics = np.arange(30) % 3  # one per pair
    out = viz.plot_modalities(
        a, b, method="pca", ax=ax, topics=topics, topic_names=["cat", "dog", "car"], labels=("img", "txt")
    )
    assert out is fig
    assert n_points(ax) == 60 and n_pair_lines(ax) == 0
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["img", "txt", "cat", "dog", "car"]
    # the points of one modality carry several colours (one per topic)
    colours = {tuple(c) for c in ax.collections[0].get_facecolors()}
    assert len(colours) == 3
    with pytest.raises(ValueError, match="topics"):
        viz.plot_modalities(a, b, topics=np.arange(7))


def test_plot_modalities_pair_lines_need_pairs(pair):
    a, b = pair
    with pytest.raises(ValueError, match="pair_lines"):
        viz.plot_modalities(a, b[:10], pair_lines=3)
    fig = viz.plot_modalities(a, b[:10], pair_lines=0, method="pca")
    assert n_points(fig.axes[0]) == 40


def test_plot_projection_grid(pair):
    a, b = pair
    fig = viz.plot_projection_grid(a, b, methods=("pca", "tsne"), pair_lines=4, title="grid")
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["PCA", "t-SNE"]
    assert fig.axes[1].get_xlabel() == "t-SNE 1"
    for ax in fig.axes:
        assert n_points(ax) == 60 and n_pair_lines(ax) == 4


def test_plot_metric_curve():
    x = [0.0, 0.5, 1.0, 3.0]
    ys = {"gap": ([0.8, 0.7, 0.6, 0.5], [0.01, 0.02, 0.01, 0.03]), "silhouette": ([0.3, 0.2, 0.2, 0.1], None)}
    fig = viz.plot_metric_curve(x, ys, xlabel="lambda", ylabel="value", title="sweep")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2
    assert len(ax.collections) == 1  # one error band (the other series has no std)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), ys["gap"][0])
    assert ax.get_xlabel() == "lambda" and ax.get_title() == "sweep"
    with pytest.raises(ValueError, match="gap"):
        viz.plot_metric_curve(x, {"gap": ([1, 2], None)})


def test_save_figure_writes_png_atomically(tmp_path, pair):
    fig = viz.plot_modalities(*pair, method="pca")
    target = tmp_path / "deep" / "er" / "fig.png"
    out = viz.save_figure(fig, target)
    assert out == target
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in target.parent.iterdir()) == ["fig.png"]  # no temp files left
    assert not plt.fignum_exists(fig.number)  # closed
    # overwriting an existing file works the same way
    fig2 = viz.plot_metric_curve([0, 1], {"m": ([0, 1], [0.1, 0.1])})
    viz.save_figure(fig2, target, dpi=50, close=False)
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in target.parent.iterdir()) == ["fig.png"]
    assert plt.fignum_exists(fig2.number)  # kept open on request


def test_import_does_not_change_global_style():
    import importlib

    before = dict(matplotlib.rcParams)
    importlib.reload(viz)
    after = dict(matplotlib.rcParams)
    changed = {k for k in before if before[k] != after[k] and k != "backend"}
    assert not changed
