import itertools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from dclib import ari, cluster_acc, evaluate, matched_confusion_matrix, nmi
from dclib.metrics import best_mapping


def brute_force_acc(y_true, y_pred):
    """Max over all injective cluster->class maps of the fraction of matches."""
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    best = 0
    # pad the smaller side so every injective map is a permutation of the larger one
    targets = list(classes) + [-1] * max(0, len(clusters) - len(classes))
    for perm in itertools.permutations(targets, len(clusters)):
        mapping = dict(zip(clusters, perm, strict=True))
        best = max(best, np.mean([mapping[p] == t for p, t in zip(y_pred, y_true, strict=True)]))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_acc_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    k_true, k_pred = rng.integers(2, 5), rng.integers(2, 6)
    y_true = rng.integers(0, k_true, 40)
    y_pred = rng.integers(0, k_pred, 40)
    assert cluster_acc(y_true, y_pred) == pytest.approx(brute_force_acc(y_true, y_pred))


def test_acc_invariant_to_relabelling():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 5, 200))
    perm = rng.permutation(5)
    assert cluster_acc(y_true, perm[y_pred]) == pytest.approx(cluster_acc(y_true, y_pred))
    assert cluster_acc(y_true, perm[y_true]) == 1.0
    assert nmi(y_true, perm[y_pred]) == pytest.approx(nmi(y_true, y_pred))
    assert ari(y_true, perm[y_pred]) == pytest.approx(ari(y_true, y_pred))


def test_acc_known_values_and_overclustering():
    assert cluster_acc([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0
    assert cluster_acc([0, 0, 1, 1], [0, 0, 0, 0]) == 0.5
    # more clusters than classes: extra clusters cannot be matched, so they count as errors
    assert cluster_acc([0, 0, 1, 1], [0, 1, 2, 3]) == 0.5
    # fewer clusters than classes
    assert cluster_acc([0, 1, 2, 2], [0, 0, 1, 1]) == 0.75


def test_nmi_ari_match_sklearn():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 4, 100), rng.integers(0, 6, 100)
    assert nmi(a, b) == pytest.approx(normalized_mutual_info_score(a, b))
    assert ari(a, b) == pytest.approx(adjusted_rand_score(a, b))
    assert set(evaluate(a, b)) == {"acc", "nmi", "ari"}


def test_matched_confusion_matrix_has_matches_on_diagonal():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([2, 2, 1, 0, 0, 1, 1, 1])
    cm, classes, order = matched_confusion_matrix(y_true, y_pred)
    assert cm.sum() == len(y_true)
    assert np.trace(cm) == round(cluster_acc(y_true, y_pred) * len(y_true))
    assert list(classes) == [0, 1, 2]
    assert best_mapping(y_true, y_pred) == {2: 0, 0: 1, 1: 2}
    assert list(order) == [2, 0, 1]


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([0, 1, 1], [0, 1], "same samples"),
        ([[0, 1]], [0, 1], "1-D"),
        ([0.5, 1.0], [0, 1], "integer"),
        ([], [], "empty"),
    ],
)
def test_metrics_reject_bad_labels(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        cluster_acc(y_true, y_pred)
