"""Clustering metrics: ACC with the Hungarian matching, NMI, ARI, and the matched confusion matrix.

Lesson: ``notebooks/00_introduction.ipynb`` (why ACC needs a matching; NMI and ARI by hand).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

__all__ = ["cluster_acc", "nmi", "ari", "evaluate", "best_mapping", "matched_confusion_matrix"]


def _as_labels(y, name: str) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer labels, got shape {y.shape}.")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer labels, got non-integer floats.")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer labels, got dtype {y.dtype}.")
    return y


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}; pass labels for the "
            "same samples."
        )
    if len(y_true) == 0:
        raise ValueError("Cannot evaluate an empty clustering: pass at least one label.")
    return y_true, y_pred


def _contingency(y_true: np.ndarray, y_pred: np.ndarray):
    classes, t = np.unique(y_true, return_inverse=True)
    clusters, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    return table, clusters, classes


def best_mapping(y_true, y_pred) -> dict[int, int]:
    """Cluster id -> class id maximising the matches (Hungarian algorithm on the contingency table).

    With more clusters than classes some clusters stay unmatched (their points count as errors).
    """
    y_true, y_pred = _pair(y_true, y_pred)
    table, clusters, classes = _contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {int(clusters[r]): int(classes[c]) for r, c in zip(rows, cols, strict=True)}


def cluster_acc(y_true, y_pred) -> float:
    """Unsupervised accuracy: max over one-to-one cluster->class maps of the fraction correct.

    Cluster ids are arbitrary, so plain accuracy is meaningless; the best map is found in
    O(k^3) by the Hungarian algorithm instead of trying all k! permutations.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    table, _, _ = _contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(y_true))


def nmi(y_true, y_pred) -> float:
    """Normalised mutual information (arithmetic mean normalisation, as in scikit-learn)."""
    return float(normalized_mutual_info_score(*_pair(y_true, y_pred)))


def ari(y_true, y_pred) -> float:
    """Adjusted Rand index: pair-counting agreement corrected for chance (0 = random)."""
    return float(adjusted_rand_score(*_pair(y_true, y_pred)))


def evaluate(y_true, y_pred) -> dict[str, float]:
    """ACC, NMI and ARI in one dict (the three numbers every table in the course reports)."""
    return {"acc": cluster_acc(y_true, y_pred), "nmi": nmi(y_true, y_pred), "ari": ari(y_true, y_pred)}


def matched_confusion_matrix(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confusion matrix (classes x clusters) with clusters reordered to follow their matched class.

    Returns ``(matrix, classes, cluster_order)`` so a heatmap has its matches on the diagonal.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    table, clusters, classes = _contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    matched = [r for _, r in sorted(zip(cols, rows, strict=True))]
    rest = [r for r in range(len(clusters)) if r not in set(matched)]
    order = matched + rest
    return table[order].T, classes, clusters[order]
