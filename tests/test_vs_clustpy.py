"""benchmarks/vs_clustpy.py: ClustPy's final re-clustering, applied to our models, and the side-by-side table."""

import numpy as np
import pandas as pd

from dclib import evaluate


class _Fitted:
    """Stands in for a fitted estimator: an embedding and the learned means, nothing else."""

    def __init__(self, Z: np.ndarray, centers: np.ndarray):
        self.Z, self.cluster_centers_ = Z, centers

    def transform(self, X):
        return self.Z


def _blobs(seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    y = np.repeat(np.arange(3), 60)
    # Elongated clusters: the full-covariance mixture must model the shape, not only the centres.
    Z = centers[y] + rng.normal(size=(len(y), 2)) * np.array([1.2, 0.3])
    return Z, y, centers


def test_recluster_recovers_separated_clusters_for_kmeans_and_full_gmm(benchmark_script):
    vs = benchmark_script("vs_clustpy")
    Z, y, centers = _blobs()
    model = _Fitted(Z, centers + 0.5)
    for name in ("dec", "idec", "dcn", "vade"):
        labels = vs.recluster(name, model, None, 3, seed=0)
        assert labels.shape == y.shape
        assert evaluate(y, labels)["acc"] == 1.0, name


def test_recluster_vade_starts_from_the_learned_means(benchmark_script):
    # With one mean placed on each cluster the mixture keeps that order: cluster c of the refit is the
    # cluster whose start was means[c] (a k-means refit has no such link).
    vs = benchmark_script("vs_clustpy")
    Z, y, centers = _blobs(1)
    order = np.array([2, 0, 1])
    labels = vs.recluster("vade", _Fitted(Z, centers[order]), None, 3, seed=0)
    np.testing.assert_array_equal(labels, np.argsort(order)[y])


def test_format_table_reports_the_time_ratio_to_clustpy_per_method(benchmark_script):
    vs = benchmark_script("vs_clustpy")
    rows = [
        dict(method="dec", library="clustpy", seed=0, seconds=100.0, acc=0.6, nmi=0.6, ari=0.5),
        dict(method="dec", library="clustpy", seed=1, seconds=120.0, acc=0.7, nmi=0.6, ari=0.5),
        dict(method="dec", library="ours-course", seed=0, seconds=44.0, acc=0.65, nmi=0.6, ari=0.5),
        dict(method="dec", library="ours-course", seed=1, seconds=66.0, acc=0.63, nmi=0.6, ari=0.5),
    ]
    text = vs.format_table(pd.DataFrame(rows))
    ours = next(line for line in text.splitlines() if "ours-course" in line)
    theirs = next(line for line in text.splitlines() if line.split()[1] == "clustpy")
    assert " 0.50 " in ours  # 55 s / 110 s
    assert " 1.00 " in theirs
    assert "0.640 ± 0.014" in ours and "0.650 ± 0.071" in theirs
