"""k-NN graph, Laplacian, graph-degree-linkage affinity and greedy merging, against brute force and
hand-made point sets whose merge order is known."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dclib.graphs import (
    gdl_affinity,
    gdl_merge,
    indicator,
    initial_clusters,
    knn_graph,
    knn_search_torch,
    laplacian,
    laplacian_quadratic,
)


def brute_knn(X, k, sigma2):
    n = len(X)
    W = np.zeros((n, n))
    d2 = ((X[:, None] - X[None]) ** 2).sum(-1)
    for i in range(n):
        others = [j for j in np.argsort(d2[i], kind="stable") if j != i][:k]
        for j in others:
            W[i, j] = np.exp(-d2[i, j] / sigma2)
    return W


def brute_gdl(W, labels):
    """A(C_a, C_b) = Σ_{i∈a, j∈b, t∈a} W_ij W_jt / |C_a|² + the same with a and b swapped (triple loops)."""
    m = labels.max() + 1
    members = [np.flatnonzero(labels == a) for a in range(m)]
    A = np.zeros((m, m))
    for a in range(m):
        for b in range(m):
            if a == b:
                continue
            ab = sum(W[i, j] * W[j, t] for i in members[a] for j in members[b] for t in members[a])
            ba = sum(W[i, j] * W[j, t] for i in members[b] for j in members[a] for t in members[b])
            A[a, b] = ab / len(members[a]) ** 2 + ba / len(members[b]) ** 2
    return A


def test_knn_graph_matches_brute_force_and_default_sigma():
    X = np.random.default_rng(0).normal(size=(15, 3))
    W = knn_graph(X, 4, sigma2=2.0)
    assert sp.issparse(W) and W.nnz == 15 * 4
    np.testing.assert_allclose(W.toarray(), brute_knn(X, 4, 2.0), rtol=1e-12)
    d2 = ((X[:, None] - X[None]) ** 2).sum(-1)
    knn_d2 = np.sort(d2 + np.diag(np.full(15, np.inf)), axis=1)[:, :4]
    np.testing.assert_allclose(knn_graph(X, 4).toarray(), brute_knn(X, 4, knn_d2.mean()), rtol=1e-12)
    S = knn_graph(X, 4, symmetric=True).toarray()
    np.testing.assert_allclose(S, S.T)


def test_knn_graph_rejects_bad_k():
    with pytest.raises(ValueError, match="n_neighbors"):
        knn_graph(np.zeros((5, 2)), 5)


def test_laplacian_quadratic_form_is_half_the_weighted_edge_lengths():
    rng = np.random.default_rng(1)
    X, Z = rng.normal(size=(12, 4)), rng.normal(size=(12, 2))
    W = knn_graph(X, 3, symmetric=True)
    L = laplacian(W)
    np.testing.assert_allclose(np.asarray(L.sum(1)).ravel(), 0, atol=1e-12)
    Wd = W.toarray()
    brute = sum(Wd[i, j] * ((Z[i] - Z[j]) ** 2).sum() for i in range(12) for j in range(12))
    assert laplacian_quadratic(Z, L) == pytest.approx(brute / 2, rel=1e-12)
    with pytest.raises(ValueError, match="symmetric"):
        laplacian(knn_graph(X, 3))


def test_gdl_affinity_matches_triple_loop():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(14, 2))
    W = knn_graph(X, 3)
    labels = np.arange(14) % 5
    A = gdl_affinity(W, labels)
    np.testing.assert_allclose(A.toarray(), brute_gdl(W.toarray(), labels), rtol=1e-12, atol=1e-15)
    assert indicator(labels).shape == (14, 5)
    with pytest.raises(ValueError, match="relabel"):
        gdl_affinity(W, np.where(labels == 2, 0, labels))


def test_singleton_affinity_is_the_mutual_edge_product():
    """For single points A_ab = 2 W_ab W_ba: only mutual neighbours are linked."""
    X = np.array([[0.0], [1.0], [3.0]])
    W = knn_graph(X, 1, sigma2=1.0).toarray()  # 0 ↔ 1 mutual, 2 → 1 one-way
    A = gdl_affinity(sp.csr_matrix(W), np.arange(3)).toarray()
    assert A[0, 1] == pytest.approx(2 * np.exp(-1.0) ** 2)
    assert A[1, 2] == 0 and A[0, 2] == 0


def test_merge_order_on_tight_pairs():
    """Three pairs of decreasing tightness, far from each other: the tightest pair merges first."""
    X = np.array([[20.0], [20.6], [0.0], [0.1], [10.0], [10.3]])
    labels, merges = gdl_merge(knn_graph(X, 1, sigma2=1.0), np.arange(6), 3, record=True)
    assert [sorted(np.r_[a, b].tolist()) for a, b, _ in merges] == [[2, 3], [4, 5], [0, 1]]
    assert [m[2] for m in merges] == sorted((m[2] for m in merges), reverse=True)
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[4] == labels[5]
    assert len(set(labels.tolist())) == 3


def test_merge_order_two_groups_then_the_unconnected_pair():
    """Two groups of three on a line, k = 2, σ² = 0.5 (W_ij = exp(−d²/0.5)). By hand:
    A(3, 4) = 2·exp(−0.02)² = 1.92 is the largest singleton affinity (then A(0, 1) = 2·exp(−0.08)² = 1.70);
    next A({3,4}, 5) = (W_35 + W_45)(W_53 + W_54)/4 + (W_53 W_35 + W_54 W_45) = 0.61 + 1.23 = 1.83 > 1.70,
    so GDL grows {3, 4} before it pairs 0 and 1: it prefers clusters with many 2-paths. The two
    groups share no 2-path, so the last merge is the fallback (affinity 0)."""
    X = np.array([[0.0], [0.2], [0.5], [9.0], [9.1], [9.4]])
    labels, merges = gdl_merge(knn_graph(X, 2, sigma2=0.5), np.arange(6), 1, record=True)
    order = [sorted(np.r_[a, b].tolist()) for a, b, _ in merges]
    assert order == [[3, 4], [3, 4, 5], [0, 1], [0, 1, 2], list(range(6))]
    w = lambda d: np.exp(-d**2 / 0.5)  # noqa: E731
    assert merges[0][2] == pytest.approx(2 * w(0.1) ** 2)
    assert merges[1][2] == pytest.approx((w(0.4) + w(0.3)) ** 2 / 4 + w(0.4) ** 2 + w(0.3) ** 2)
    assert merges[2][2] == pytest.approx(2 * w(0.2) ** 2)
    assert merges[4][2] == 0.0 and set(labels.tolist()) == {0}


def test_gdl_merge_agrees_with_brute_force_greedy():
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(0, 1, (8, 2)), rng.normal(5, 1, (8, 2))]
    W = knn_graph(X, 4)
    labels = np.arange(16)
    expected = labels.copy()
    while expected.max() + 1 > 2:
        A = brute_gdl(W.toarray(), expected)
        a, b = sorted(np.unravel_index(np.argmax(A), A.shape))
        expected[expected == b] = a
        expected[expected > b] -= 1
    np.testing.assert_array_equal(gdl_merge(W, labels, 2), expected)
    with pytest.raises(ValueError, match="n_clusters"):
        gdl_merge(W, labels, 17)


def test_initial_clusters_are_the_nearest_neighbour_components():
    X = np.array([[0.0], [0.1], [0.3], [5.0], [5.2], [9.0], [9.05]])
    labels = initial_clusters(knn_graph(X, 2))
    assert labels[0] == labels[1] == labels[2] and labels[3] == labels[4] and labels[5] == labels[6]
    assert len(set(labels.tolist())) == 3


def _reference_gdl_merge(W, labels, n_clusters, record=False):
    """The former ``gdl_merge``, copied: every affinity recomputed with ``gdl_affinity`` after each merge."""
    labels = np.unique(np.asarray(labels), return_inverse=True)[1]
    m = int(labels.max()) + 1
    W = sp.csr_matrix(W)
    links = (W + W.T).tocsr()
    merges = []
    while m > n_clusters:
        A = gdl_affinity(W, labels)
        a = b = -1
        isolated = np.flatnonzero(np.diff(A.indptr) == 0)
        if len(isolated):
            S = indicator(labels, m)
            L = (S.T @ links @ S).tolil()
            L.setdiag(0)
            L = L.tocsr()
            L.eliminate_zeros()
            sizes = np.bincount(labels, minlength=m)
            linked = [c for c in isolated[np.argsort(sizes[isolated], kind="stable")] if L.indptr[c + 1] > L.indptr[c]]
            if linked:
                a = linked[0]
                row = slice(L.indptr[a], L.indptr[a + 1])
                b = int(L.indices[row][np.argmax(L.data[row] / sizes[L.indices[row]])])
                value = 0.0
        if a < 0:
            A = A.tocoo()
            if A.nnz:
                best = int(np.argmax(A.data))
                a, b, value = int(A.row[best]), int(A.col[best]), float(A.data[best])
            else:
                a, b = np.argsort(np.bincount(labels), kind="stable")[:2].tolist()
                value = 0.0
        a, b = min(a, b), max(a, b)
        if record:
            merges.append((np.flatnonzero(labels == a), np.flatnonzero(labels == b), value))
        labels[labels == b] = a
        labels[labels > b] -= 1
        m -= 1
    return (labels, merges) if record else labels


def _assert_same_merges(W, labels, targets):
    """gdl_merge and the full-recomputation loop give the same labels and the same recorded merges."""
    for target in targets:
        expected, expected_merges = _reference_gdl_merge(W, labels, target, record=True)
        got, merges = gdl_merge(W, labels, target, record=True)
        np.testing.assert_array_equal(got, expected)
        assert len(merges) == len(expected_merges)
        for (a, b, value), (ea, eb, evalue) in zip(merges, expected_merges, strict=True):
            np.testing.assert_array_equal(a, ea)
            np.testing.assert_array_equal(b, eb)
            assert value == pytest.approx(evalue, rel=1e-9, abs=0)
    return expected_merges


@pytest.mark.parametrize(("seed", "n", "k", "singletons"),
                         [(0, 300, 3, False), (1, 160, 5, True), (2, 400, 10, False), (3, 150, 3, True),
                          (4, 250, 5, False)])
def test_incremental_merge_matches_full_recomputation(seed, n, k, singletons):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 5, (6, 3))[rng.integers(0, 6, n)] + rng.normal(size=(n, 3))
    W = knn_graph(X, k)
    labels = np.arange(n) if singletons else initial_clusters(W)
    m = int(labels.max()) + 1
    _assert_same_merges(W, labels, [max(1, m // 2), 4, 1] if m < 200 else [m // 2, 3])


def test_incremental_merge_matches_on_isolated_and_unconnected_clusters():
    """Three far blobs (three components) plus outliers near the largest that nobody has as a neighbour:
    the outliers have edges but no 2-path (the isolated rule), and the last two merges join components,
    the two smallest first."""
    rng = np.random.default_rng(5)
    X = np.r_[rng.normal(0, 1, (20, 2)) + 1000, rng.normal(0, 1, (40, 2)) - 1000, rng.normal(0, 1, (90, 2)),
              [[6.0, 0], [0, -7.0], [-6.5, 6.5]]]
    W = knn_graph(X, 4)
    merges = _assert_same_merges(W, np.arange(len(X)), [1])
    links = (W + W.T).tocsr()
    linked = [links[a][:, b].nnz > 0 for a, b, value in merges if value == 0.0]
    assert any(linked) and not all(linked)  # both branches taken by the reference


def test_ties_go_to_the_smallest_pair_and_merging_resumes_exactly():
    """On a lattice many affinities tie exactly: the first pair in (a, b) order wins, and the values do not
    depend on the merge history (stopping and restarting gives the same merges, bit for bit)."""
    X = np.array([[x, y] for x in range(8) for y in range(6)], dtype=float)
    W = knn_graph(X, 4, sigma2=1.0)
    labels, merges = gdl_merge(W, np.arange(48), 6, record=True)
    assert [merges[0][0].tolist(), merges[0][1].tolist()] == [[0], [1]]
    half, first = gdl_merge(W, np.arange(48), 20, record=True)
    rest, second = gdl_merge(W, half, 6, record=True)
    np.testing.assert_array_equal(rest, labels)
    for (a, b, value), (ea, eb, evalue) in zip(first + second, merges, strict=True):
        np.testing.assert_array_equal(a, ea)
        np.testing.assert_array_equal(b, eb)
        assert value == evalue


@pytest.mark.parametrize("max_block", [2**27, 97])  # one block, and blocks of one row (an uneven last one)
def test_torch_knn_search_finds_the_same_neighbours_as_scikit_learn(max_block):
    # knn_graph searches on the GPU when the data is there; the search must be exact, like scikit-learn's.
    X = np.random.default_rng(0).normal(size=(120, 7))
    X[5] = X[9]  # a duplicate: each of the two must get the other, not itself
    d2, idx = knn_search_torch(torch.as_tensor(X), 6, max_block=max_block)
    W = knn_graph(X, 6)
    assert idx.shape == (120, 6) and not (idx == np.arange(120)[:, None]).any()
    np.testing.assert_array_equal(np.sort(idx, 1), np.sort(W.indices.reshape(120, 6), 1))
    brute = ((X[:, None] - X[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d2, np.take_along_axis(brute, idx, 1), atol=1e-10)
    assert (np.diff(d2, axis=1) >= 0).all()  # nearest first
    assert idx[5, 0] == 9 and idx[9, 0] == 5 and d2[5, 0] < 1e-12


def _fragment_graph():
    """A (0-3) and B (4-7): cliques of weight 1 joined by 3 ↔ 4 (0.5); F (8-9): a pair joined to A by 0 ↔ 8 only
    (1e-6). GDL's affinity A–F is positive but tiny, far below A–B's, so plain GDL merges A with B."""
    W = np.zeros((10, 10))
    for block in (range(4), range(4, 8), range(8, 10)):
        for i in block:
            for j in block:
                W[i, j] = float(i != j)
    W[3, 4] = W[4, 3] = 0.5
    W[0, 8] = W[8, 0] = 1e-6
    return sp.csr_matrix(W)


def test_min_size_absorbs_a_fragment_instead_of_giving_it_a_cluster():
    W = _fragment_graph()
    start = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    assert 0 < gdl_affinity(W, start)[0, 2] < 1e-9  # F has a 2-path to A: not the isolated rule's case
    np.testing.assert_array_equal(gdl_merge(W, start, 2), [0, 0, 0, 0, 0, 0, 0, 0, 1, 1])  # plain GDL: A ∪ B, and F
    labels, merges = gdl_merge(W, start, 2, record=True, min_size=3)
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 1, 1, 1, 0, 0])  # F joins A, the cluster it is linked to
    assert merges[0][2] == 0.0 and list(merges[0][1]) == [8, 9]
    with pytest.raises(ValueError, match="min_size"):
        gdl_merge(W, start, 2, min_size=0)


def test_min_size_waits_until_the_large_clusters_are_the_target_number():
    # From singletons every cluster is small: GDL's own order must grow clusters until two reach min_size (absorbing
    # each singleton into its most-linked neighbour from the start would be another algorithm); then the rest
    # (7, then 8 and 9) are absorbed by edge weight.
    W = _fragment_graph()
    labels, merges = gdl_merge(W, np.arange(10), 2, record=True, min_size=3)
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    values = [value for *_, value in merges]
    assert all(v > 0 for v in values[:5]) and values[5:] == [0.0, 0.0, 0.0]  # A and {4, 5, 6} first, by affinity
    assert [list(b) for _, b, _ in merges[5:]] == [[7], [9], [8, 9]]
    # min_size=1 (the default) is plain GDL, merge for merge
    assert [(list(a), list(b)) for a, b, _ in gdl_merge(W, np.arange(10), 2, record=True, min_size=1)[1]] == [
        (list(a), list(b)) for a, b, _ in gdl_merge(W, np.arange(10), 2, record=True)[1]]
