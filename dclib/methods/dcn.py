"""DCN: an autoencoder trained so that its embedding is easy for k-means (a "k-means-friendly space").

DCN minimises, over the network, the centroids M = [μ_1 … μ_K] and the one-hot assignments s_i,

    L = Σ_i  ℓ(g(f(x_i)), x_i) + (λ/2) ‖f(x_i) − M s_i‖²      (``lamda`` is λ)

by alternating optimisation per mini-batch: (1) an optimiser step on the network with s and M
fixed, (2) the hard assignment s_i = argmin_k ‖f(x_i) − μ_k‖ with the updated network,
(3) a running-mean update of each centroid by the points just assigned to it.
Derived in ``notebooks/06_dcn_kmeans_loss.ipynb``.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import distributed as dist
from ..losses import kmeans_assignment, kmeans_loss, reconstruction_loss
from ..train import History, cuda_graphs_enabled, embed, train
from .base import AutoencoderClusterer
from .baselines import fit_kmeans

__all__ = ["DCN", "PAPER_LAMDA", "update_centroids"]

# The DCN paper's weight of the k-means term on MNIST, for a reconstruction error summed over pixels.
PAPER_LAMDA = 0.05


@torch.no_grad()
def update_centroids(
    centers: torch.Tensor, counts: torch.Tensor, z: torch.Tensor, assignments: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """DCN's centroid step for a whole batch at once; returns the new ``(centers, counts)``.

    The paper processes the points one by one: for a point z assigned to cluster k,
    ``c_k ← c_k + 1`` and ``μ_k ← μ_k − (1/c_k)(μ_k − z)``. This is a running mean —
    μ_k(new) = (c_k(old) μ_k(old) + z) / c_k(new), i.e. c_k μ_k grows by z — so after the m_k
    points of cluster k in the batch, whatever their order,

        c_k' = c_k + m_k,      μ_k' = (c_k μ_k + Σ_{i: s_i = k} z_i) / c_k'.

    Both sums come from ``index_add_`` (no loop over samples or clusters, no host sync);
    clusters with no point in the batch keep their centroid and count. ``counts`` is a float
    tensor of shape (K,); nothing is modified in place.
    """
    ones = torch.ones(len(z), dtype=counts.dtype, device=counts.device)
    new_counts = counts.index_add(0, assignments, ones)
    sums = (centers * counts.unsqueeze(1)).index_add(0, assignments, z.to(centers.dtype))
    return sums / new_counts.unsqueeze(1), new_counts


class DCN(AutoencoderClusterer):
    """Deep Clustering Network (Yang, Fu, Sidiropoulos & Hong, 2017).

    Steps: pretrain the autoencoder, run k-means (``n_init`` restarts) on the embedding to
    initialise the centroids μ_k, the assignments s_i and the counts c_k, then for ``epochs``
    passes, per mini-batch:

    1. network step (Adam, ``lr``) on ``reconstruction_loss + lamda * kmeans_loss`` with s_i and
       M fixed (M is not a parameter: no gradient reaches it);
    2. assignment step s_i = argmin_k ‖f(x_i) − μ_k‖ for the batch, with the updated network;
    3. centroid step: ``update_centroids`` (the paper's per-point running mean, vectorised).

    ``kmeans_loss`` is ½‖z_i − μ_{s_i}‖² summed over the embedding coordinates and averaged over
    the batch, while ``reconstruction_loss`` is the mean squared error per input coordinate (as
    in pretraining and IDEC), so ``lamda`` is the weight of the k-means term relative to that.
    The paper's reconstruction term is the squared error *summed* over the D input coordinates,
    so its λ is D times ours. ``lamda=None`` (the default) uses the paper's MNIST value 0.05 in
    these units, ``lamda_ = 0.05 / D`` (6.4e-5 for 28×28 digits; ClustPy's 0.1 is 1.3e-4).
    Too large a ``lamda`` pulls every point onto its centroid (the trivial way to lower the
    k-means term) and the accuracy falls below the k-means start: with λ = 1 the k-means term
    falls 40-fold in five epochs and the reconstruction error almost triples (lecture 06,
    section 5.3). On mnist5k the paper's weight gives ACC 0.632 ± 0.023 over six seeds against
    0.611 ± 0.027 with λ = 1; on scikit-learn's 8×8 digits λ = 1 does better
    (benchmarks/RESULTS.md, session 11).

    Choices, and why:

    * The counts c_k start at the k-means cluster sizes, so each centroid stays the exact mean
      of all the points ever assigned to it (the k-means points first). Starting from 1 would
      make the first update move μ_k halfway to a single point; a widely used PyTorch port
      starts from a constant 100. Either way the step size 1/c_k decreases like 1/t.
    * Adam for the network (as in pretraining): the k-means term's gradient scale changes as the
      embedding contracts and Adam's per-parameter normalisation makes ``lr`` robust to that.
    * Within a batch, all points are assigned with the centroids from before the batch's
      centroid step (the paper's sequential version would let earlier points of the batch move
      the centroids before later ones are assigned); the difference is of order 1/c_k.

    The stored assignments ``s`` of the whole data set are those of the last time each point
    was in a batch; ``labels_`` is the final hard assignment recomputed on all the data.
    ``fit(X, y)`` uses ``y`` only to log ACC/NMI/ARI per epoch in ``history_``.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        dims: tuple[int, ...] = (784, 500, 500, 2000, 10),
        autoencoder="mlp",
        lamda: float | None = None,
        pretrain: str | None = "end-to-end",
        pretrain_epochs: int = 50,
        pretrain_lr: float = 1e-3,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 1e-3,
        n_init: int = 10,
        cache: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.dims = dims
        self.autoencoder = autoencoder
        self.lamda = lamda
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.n_init = n_init
        self.cache = cache
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_hyperparameters(self) -> None:
        if int(self.epochs) < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs!r}.")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}.")
        if self.lamda is not None and not self.lamda >= 0:  # also refuses NaN
            raise ValueError(f"lamda (the k-means term's weight) must be >= 0 or None (the paper's weight), "
                             f"got {self.lamda!r}.")

    def _assign_all(self, X: torch.Tensor) -> torch.Tensor:
        self.autoencoder_.eval()
        return embed(lambda x: kmeans_assignment(self.autoencoder_.encode(x), self.centroids_), X)

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        self._check_hyperparameters()
        # The paper's λ = 0.05 weighs a reconstruction error summed over the D input coordinates; ours
        # is their mean, so the same balance is 0.05 / D here.
        self.lamda_ = PAPER_LAMDA / X[0].numel() if self.lamda is None else float(self.lamda)
        ae = self.autoencoder_ = self._pretrained_autoencoder(X)
        ae.eval()
        Z = dist.gather_embeddings(embed(ae.encode, dist.shard_rows(X)))  # all samples' embedding
        kmeans = dist.on_rank0(lambda: fit_kmeans(Z, self.n_clusters, self.n_init, self.random_state))
        self.initial_labels_ = kmeans.labels_.astype(np.int64)
        self.centroids_ = torch.as_tensor(kmeans.cluster_centers_, dtype=torch.float32, device=self.device_)
        sizes = np.bincount(self.initial_labels_, minlength=self.n_clusters)
        self.counts_ = torch.as_tensor(np.maximum(sizes, 1), dtype=torch.float32, device=self.device_)
        assignments = torch.tensor(self.initial_labels_, device=self.device_)  # a copy: updated in place
        # Capturable Adam: on a GPU each step is a replayed CUDA graph (``train``'s ``cuda_graph``), which
        # re-runs kernels on fixed addresses, so the centroids and assignments it reads change in place.
        optimizer = torch.optim.Adam(ae.parameters(), lr=self.lr, capturable=cuda_graphs_enabled(self.device_))
        metrics = History()

        def assign_and_update(iteration: int, idx: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
            """Steps 2 and 3 for the batch, with the network as its optimiser step (step 1) left it."""
            with torch.no_grad():
                z = ae.encode(X[idx])
                s = kmeans_assignment(z, self.centroids_)
                # Data parallel: every rank updates the centroids with the whole global batch (rank
                # order rebuilds the batch's order), so the counts c_k and centroids stay global.
                idx, z, s = dist.gather_rows(idx), dist.gather_rows(z), dist.gather_rows(s)
                assignments[idx] = s
                centroids, counts = update_centroids(self.centroids_, self.counts_, z, s)
                self.centroids_.copy_(centroids)
                self.counts_.copy_(counts)

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            x = X[idx]
            z = ae.encode(x)
            rec = reconstruction_loss(ae.decode(z), x)
            km = kmeans_loss(z, self.centroids_, assignments[idx])
            return {"loss": rec + self.lamda_ * km, "reconstruction": rec, "kmeans": km}

        def after_epoch(epoch: int, means: dict[str, float]) -> bool:
            if y is not None:
                metrics.log(**self._log_metrics(self._assign_all(X).cpu().numpy(), y))
            ae.train()
            return False

        ae.train()
        epoch_history = train(
            step, optimizer, len(X), epochs=int(self.epochs), batch_size=int(self.batch_size),
            device=self.device_, generator=self._generator(2), after_batch=assign_and_update,
            after_epoch=after_epoch, desc=type(self).__name__, show_progress=self.verbose,
            cuda_graph=True, modules=(ae,),
        )
        self.history_.update(epoch_history)
        self.history_.update(metrics)
        self.assignments_ = assignments.cpu().numpy().astype(np.int64)
        self.labels_ = self._assign_all(X).cpu().numpy().astype(np.int64)
        self.cluster_centers_ = self.centroids_.cpu().numpy()

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        """The nearest centroid in the embedding, as in DCN's assignment step."""
        return self._assign_all(X).cpu().numpy().astype(np.int64)
