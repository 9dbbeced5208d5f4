"""Sparse neighbourhood graphs for the structure-based methods: k-NN graph, Laplacian, GDL merging.

Everything that would be O(n²) with a dense affinity matrix is kept on a k-NN graph stored as a
``scipy.sparse`` matrix (n·k non-zeros), built with scikit-learn's ``NearestNeighbors``.
Lesson: ``notebooks/11_structure_based.ipynb``.

Graph-degree linkage (GDL; Zhang et al., ECCV 2012), the affinity JULE merges with: on a directed
k-NN graph with weights W_ij = exp(−‖x_i − x_j‖²/σ²) (j among the k nearest neighbours of i),
the affinity of two clusters is

    A(C_a, C_b) = 1ᵀ W_ab W_ba 1 / |C_a|² + 1ᵀ W_ba W_ab 1 / |C_b|²,

the (size-normalised) weight of the paths of length two that leave a cluster for the other and
come back. With the cluster indicator S (n × m), in_a(j) = Σ_{i∈a} W_ij = (SᵀW)_aj and
out_a(j) = Σ_{k∈a} W_jk = (WS)_ja, the first term for all pairs at once is
(R S)_ab with R = (SᵀW) ∘ (WS)ᵀ (an element-wise product of two sparse m × n matrices), so one
affinity matrix costs a few sparse products, never an n × n dense one.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from sklearn.neighbors import NearestNeighbors

__all__ = [
    "knn_graph",
    "laplacian",
    "laplacian_quadratic",
    "indicator",
    "gdl_affinity",
    "initial_clusters",
    "gdl_merge",
]


def _as_array(X) -> np.ndarray:
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X, dtype=np.float64)
    return X.reshape(len(X), -1)


def knn_graph(X, n_neighbors: int = 10, sigma2: float | None = None, a: float = 1.0,
              symmetric: bool = False) -> sp.csr_matrix:
    """The k-NN graph of the rows of X as a sparse (n, n) matrix of heat-kernel weights.

    W_ij = exp(−‖x_i − x_j‖²/σ²) when j is one of the ``n_neighbors`` nearest neighbours of i (i
    itself excluded), 0 otherwise. σ² defaults to ``a`` times the mean squared k-NN distance (the
    GDL paper's choice), so the weights do not depend on the data's scale. ``symmetric=True``
    returns max(W, Wᵀ) (an undirected graph, as a Laplacian needs); GDL uses the directed graph.
    """
    X = _as_array(X)
    n = len(X)
    if not 1 <= n_neighbors < n:
        raise ValueError(f"n_neighbors must be between 1 and n_samples - 1 = {n - 1}, got {n_neighbors}.")
    dist, idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(X).kneighbors(X)
    # Column 0 is usually the point itself, but duplicates can come first: drop i from its own row.
    keep = idx != np.arange(n)[:, None]
    keep[keep.sum(1) > n_neighbors, -1] = False  # rows where i was not returned: drop the farthest
    dist, idx = dist[keep].reshape(n, n_neighbors), idx[keep].reshape(n, n_neighbors)
    d2 = dist**2
    sigma2 = a * float(d2.mean()) if sigma2 is None else float(sigma2)
    if sigma2 <= 0:
        raise ValueError("all k-NN distances are 0 (duplicated points): pass sigma2 > 0 explicitly.")
    W = sp.csr_matrix((np.exp(-d2 / sigma2).ravel(), idx.ravel(), np.arange(0, n * n_neighbors + 1, n_neighbors)),
                      shape=(n, n))
    return W.maximum(W.T).tocsr() if symmetric else W


def laplacian(W: sp.spmatrix) -> sp.csr_matrix:
    """The unnormalised graph Laplacian L = D − W of a symmetric weight matrix (D = diag of the degrees)."""
    if abs(W - W.T).max() > 1e-12:
        raise ValueError("the Laplacian needs a symmetric graph: build it with knn_graph(..., symmetric=True).")
    return (sp.diags(np.asarray(W.sum(1)).ravel()) - W).tocsr()


def laplacian_quadratic(Z, L: sp.spmatrix) -> float:
    """tr(Zᵀ L Z) = ½ Σ_ij W_ij ‖z_i − z_j‖²: how much an embedding Z stretches the graph's edges."""
    Z = _as_array(Z)
    return float(np.sum(Z * (L @ Z)))


def indicator(labels: np.ndarray, n_clusters: int | None = None) -> sp.csr_matrix:
    """The sparse (n, m) cluster indicator S with S_ia = 1 when sample i is in cluster a."""
    labels = np.asarray(labels)
    m = int(labels.max()) + 1 if n_clusters is None else n_clusters
    return sp.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)), shape=(len(labels), m))


def gdl_affinity(W: sp.spmatrix, labels: np.ndarray) -> sp.csr_matrix:
    """Graph-degree-linkage affinities of all pairs of clusters, as a sparse symmetric (m, m) matrix.

    A_ab = 1ᵀW_ab W_ba 1/|C_a|² + 1ᵀW_ba W_ab 1/|C_b|² (see the module docstring), diagonal set to
    0; ``labels`` must be 0..m−1 with no empty cluster. Pairs with no 2-path between them are
    absent (affinity 0), which keeps the matrix sparse.
    """
    labels = np.asarray(labels)
    S = indicator(labels)
    sizes = np.bincount(labels).astype(np.float64)
    if (sizes == 0).any():
        raise ValueError("labels must use every cluster index 0..m-1; relabel them with "
                         "np.unique(labels, return_inverse=True)[1].")
    W = sp.csr_matrix(W)
    R = (S.T @ W).multiply((W @ S).T).tocsr()  # R_aj = in_a(j) · out_a(j)
    paths = (R @ S).tocsr()  # paths_ab = 1ᵀ W_ab W_ba 1 (2-paths a → b → a)
    scaled = sp.diags(1.0 / sizes**2) @ paths
    A = (scaled + scaled.T).tocsr()
    A.setdiag(0)
    A.eliminate_zeros()
    return A


def initial_clusters(W: sp.spmatrix) -> np.ndarray:
    """JULE's over-segmentation: the connected components of the 1-nearest-neighbour graph.

    Each point is linked to its nearest neighbour (the largest weight in its row of W), so the
    clusters are small (about 3 points on average) and almost always pure.
    """
    W = sp.csr_matrix(W)
    n = W.shape[0]
    nearest = np.array([W.indices[W.indptr[i] + np.argmax(W.data[W.indptr[i]:W.indptr[i + 1]])]
                        if W.indptr[i + 1] > W.indptr[i] else i for i in range(n)])
    G = sp.csr_matrix((np.ones(n), (np.arange(n), nearest)), shape=(n, n))
    return connected_components(G, directed=True, connection="weak")[1]


def gdl_merge(W: sp.spmatrix, labels: np.ndarray, n_clusters: int, record: bool = False):
    """Greedy agglomeration: merge the two clusters of largest GDL affinity until ``n_clusters`` remain.

    Returns the new labels (0..n_clusters−1) and, with ``record=True``, the list of merges as
    (members of a, members of b, affinity), in order. The affinities are recomputed after every
    merge (sparse products, see ``gdl_affinity``). A cluster with no 2-path to any other (GDL
    affinity 0 to all, e.g. a fragment that representation learning pushed away) would never be
    merged by GDL: the smallest such cluster that still has a direct edge to another is merged
    first, into the cluster it has the most edge weight to per member (recorded with affinity 0).
    When no pair is connected at all (a graph in several components), the two smallest clusters
    are merged.
    """
    labels = np.unique(np.asarray(labels), return_inverse=True)[1]
    m = int(labels.max()) + 1
    if n_clusters < 1 or n_clusters > m:
        raise ValueError(f"cannot go from {m} clusters to n_clusters={n_clusters}: need 1 <= n_clusters <= {m}.")
    W = sp.csr_matrix(W)
    links = (W + W.T).tocsr()
    merges = []
    while m > n_clusters:
        A = gdl_affinity(W, labels)
        a = b = -1
        isolated = np.flatnonzero(np.diff(A.indptr) == 0)
        if len(isolated):  # clusters with no 2-path to any other: GDL can never merge them
            S = indicator(labels, m)
            L = (S.T @ links @ S).tolil()
            L.setdiag(0)
            L = L.tocsr()
            L.eliminate_zeros()
            sizes = np.bincount(labels, minlength=m)
            linked = [c for c in isolated[np.argsort(sizes[isolated], kind="stable")] if L.indptr[c + 1] > L.indptr[c]]
            if linked:  # the smallest one joins the cluster it has the most edge weight to, per member
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
