"""The comparison plots of lesson 09: one mark per method, at the summary's numbers, and clear errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from dclib.compare import save_results, summarise  # noqa: E402
from dclib.metrics import matched_confusion_matrix  # noqa: E402
from dclib.plots import (  # noqa: E402
    method_colors,
    plot_accuracy_vs_time,
    plot_cluster_samples,
    plot_cluster_samples_by_method,
    plot_confusions,
    plot_embeddings,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def runs() -> pd.DataFrame:
    """Three methods x three seeds with different, known numbers."""
    rng = np.random.default_rng(0)
    rows = []
    for method, acc, sec in (("kmeans", 0.52, 4.0), ("dec", 0.61, 70.0), ("vade", 0.63, 100.0)):
        for seed in range(3):
            rows.append({"method": method, "data": "toy", "n": 100, "seed": seed, "device": "cpu",
                         "seconds": sec + rng.normal(), "acc": acc + 0.01 * rng.normal(), "nmi": 0.5, "ari": 0.4})
    return pd.DataFrame(rows)


@pytest.fixture
def clustering():
    """Ten 8x8 'images', true classes and three methods' labels (one perfect, one permuted, one noisy)."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 15)
    X = rng.random((len(y), 64)) + y[:, None]
    noisy = y.copy()
    noisy[:10] = (noisy[:10] + 1) % 4
    return X, y, {"perfect": y.copy(), "permuted": (y + 2) % 4, "noisy": noisy}


def _points(ax) -> np.ndarray:
    collections = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(collections) == 1
    return np.asarray(collections[0].get_offsets())


def test_accuracy_vs_time_draws_one_point_per_method_at_the_means(runs):
    summary = summarise(runs)
    ax = plot_accuracy_vs_time(summary)
    points = _points(ax)
    assert len(points) == len(summary) == 3
    np.testing.assert_allclose(points[:, 0], summary["seconds_mean"])
    np.testing.assert_allclose(points[:, 1], summary["acc_mean"])
    assert [t.get_text() for t in ax.texts] == ["kmeans", "dec", "vade"]
    assert ax.get_xscale() == "log"


def test_accuracy_vs_time_error_bars_are_the_std(runs):
    summary = summarise(runs)
    ax = plot_accuracy_vs_time(summary, metric="acc", logx=False)
    (container,) = ax.containers
    _, _, (xbars, ybars) = container.lines
    # Each vertical bar spans mean ± std of ACC over seeds.
    spans = np.array([np.ptp(seg[:, 1]) for seg in ybars.get_segments()])
    np.testing.assert_allclose(spans, 2 * summary["acc_std"])
    spans = np.array([np.ptp(seg[:, 0]) for seg in xbars.get_segments()])
    np.testing.assert_allclose(spans, 2 * summary["seconds_std"])


def test_accuracy_vs_time_overlays_two_devices_on_one_axes(runs):
    cpu = summarise(runs)
    gpu = cpu.assign(seconds_mean=cpu["seconds_mean"] / 30)
    ax = plot_accuracy_vs_time(cpu, label="CPU")
    plot_accuracy_vs_time(gpu, ax=ax, label="GPU", marker="s")
    collections = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(collections) == 2
    np.testing.assert_allclose(collections[1].get_offsets()[:, 0], gpu["seconds_mean"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["CPU", "GPU"]


def test_accuracy_vs_time_rejects_bad_input(runs):
    with pytest.raises(ValueError, match="summarise"):
        plot_accuracy_vs_time(runs)  # the per-run table, not the summary
    with pytest.raises(ValueError, match="non-empty"):
        plot_accuracy_vs_time(summarise(runs).iloc[:0])
    with pytest.raises(ValueError, match="positive"):
        plot_accuracy_vs_time(summarise(runs).assign(seconds_mean=0.0))
    with pytest.raises(ValueError, match="NaN"):
        plot_accuracy_vs_time(summarise(runs).assign(acc_mean=np.nan))


def test_method_colors_are_stable_across_subsets():
    all_colors = method_colors(["kmeans", "dec", "vade", "my-method"])
    assert method_colors(["vade"])["vade"] == all_colors["vade"]
    assert len(set(all_colors.values())) == 4


def test_confusions_one_matched_heatmap_per_method(clustering):
    _, y, labels = clustering
    fig = plot_confusions(y, labels, ncols=2)
    assert len(fig.axes) == len(labels)  # the unused fourth cell of the 2 x 2 grid is removed
    for ax, (name, pred) in zip(fig.axes, labels.items(), strict=True):
        assert ax.get_title().startswith(name)
        expected, _, _ = matched_confusion_matrix(y, pred)
        drawn = ax.collections[0].get_array().reshape(expected.shape)
        np.testing.assert_array_equal(drawn, expected)
    assert "ACC 1.000" in fig.axes[1].get_title()  # a permutation is a perfect clustering


def test_confusions_reject_bad_input(clustering):
    _, y, labels = clustering
    with pytest.raises(ValueError, match="'noisy'"):
        plot_confusions(y, {**labels, "noisy": labels["noisy"][:-1]})
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_confusions(y, {})
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_confusions(y, [labels["perfect"]])


def test_embeddings_one_panel_per_method_with_the_same_points(clustering):
    X, y, labels = clustering
    Z = {"raw": X, "first two": X[:, :2], "scaled": 3 * X}
    fig = plot_embeddings(Z, y, method="pca", n_max=40, ncols=3)
    assert [ax.get_title() for ax in fig.axes] == list(Z)
    for ax in fig.axes:
        assert len(ax.collections[0].get_offsets()) == 40
    # 2-D input is drawn as is: the panel shows the chosen rows' coordinates.
    offsets = np.asarray(fig.axes[1].collections[0].get_offsets())
    assert all(any(np.allclose(p, row) for row in X[:, :2]) for p in offsets[:5])


def test_embeddings_reject_mismatched_labels(clustering):
    X, y, labels = clustering
    with pytest.raises(ValueError, match="'short'"):
        plot_embeddings({"short": X[:-3]}, y, method="pca")
    with pytest.raises(ValueError, match="no entry"):
        plot_embeddings({"raw": X, "other": X}, {"raw": y}, method="pca")


def test_cluster_samples_by_method_rows_follow_the_matched_class(clustering):
    X, y, labels = clustering
    fig = plot_cluster_samples_by_method(X, labels, y_true=y, n_per_cluster=3, image_shape=(8, 8))
    assert len(fig.subfigs) == len(labels)
    balanced = ["0 (15)", "1 (15)", "2 (15)", "3 (15)"]
    expected = {"perfect": balanced, "permuted": balanced,
                "noisy": ["0 (5)", "1 (25)", "2 (15)", "3 (15)"]}  # ten 0s moved to the cluster of the 1s
    for sub, name in zip(fig.subfigs, labels, strict=True):
        assert len(sub.axes) == 4 * 3  # 4 clusters x 3 samples
        assert [t.get_text() for ax in sub.axes for t in ax.texts] == expected[name]
        assert sub._suptitle.get_text() == name
    # The permuted method's cluster matched to class 0 holds the images of class 0 (values in [0, 1)).
    first_image = fig.subfigs[1].axes[0].images[0].get_array()
    assert first_image.max() < 1


def test_cluster_samples_by_method_rejects_bad_input(clustering):
    X, y, labels = clustering
    with pytest.raises(ValueError, match="'perfect'"):
        plot_cluster_samples_by_method(X[:-1], {"perfect": y})
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_cluster_samples_by_method(X, {})


def test_plot_cluster_samples_still_makes_its_own_figure(clustering):
    X, y, _ = clustering
    fig = plot_cluster_samples(X, y, n_per_cluster=2, image_shape=(8, 8))
    assert len(fig.axes) == 4 * 2


def test_save_results_writes_the_accuracy_vs_time_scatter(runs, tmp_path):
    paths = save_results(runs, tmp_path, tag="toy")
    assert set(paths) == {"runs", "summary", "figure", "scatter"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
    assert paths["scatter"].name == "toy_acc_vs_time.png"
