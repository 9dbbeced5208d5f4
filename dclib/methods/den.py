"""DEN: an autoencoder whose embedding keeps the input's neighbourhoods and uses few groups of units.

DEN (Huang et al., 2014) fine-tunes a pretrained autoencoder on

    L = L_rec + α · Σ_ij W_ij ‖z_i − z_j‖² / s² + β · Σ_g √n_g ‖z_i^(g)‖₂ / s,

with W the heat-kernel k-NN graph of the *input* (locality preservation: Σ_ij W_ij ‖z_i − z_j‖²
= 2 tr(Zᵀ L Z), L the graph Laplacian), and a group lasso over G groups of embedding
coordinates (group sparsity: each point switches on few groups, which gives the embedding a
block structure that k-means then reads off). s² is the mean squared distance of the pretrained
embedding to its mean, fixed at the start, so α and β do not depend on the data's scale.
Derived in ``notebooks/11_structure_based.ipynb``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans

from ..graphs import knn_graph
from ..losses import group_sparsity_loss, locality_preserving_loss, reconstruction_loss
from ..train import History, embed, train
from .base import AutoencoderClusterer
from .baselines import fit_kmeans

__all__ = ["DEN", "coordinate_groups"]


def coordinate_groups(Z: torch.Tensor, n_groups: int, random_state: int | None = None) -> torch.Tensor:
    """Split the d embedding coordinates into ``n_groups`` groups by k-means on their standardised profiles.

    Each coordinate j is described by its values over the n samples (a column of Z, centred and
    scaled to unit norm, so its sign and scale do not matter beyond correlation); k-means on those
    d vectors puts units that fire together in the same group. With d = n_groups every unit is its
    own group and the group lasso reduces to a (weighted) L1 penalty.
    """
    d = Z.shape[1]
    if not 1 <= n_groups <= d:
        raise ValueError(f"n_groups must be between 1 and the embedding size {d}, got {n_groups}; "
                         "use a larger embedding (dims[-1]) or fewer groups.")
    if n_groups == d:
        return torch.arange(d, device=Z.device)
    cols = Z.detach().cpu().double().numpy().T
    cols = cols - cols.mean(1, keepdims=True)
    cols /= np.linalg.norm(cols, axis=1, keepdims=True).clip(1e-12)
    groups = KMeans(n_groups, n_init=10, random_state=random_state).fit_predict(cols)
    return torch.as_tensor(groups, dtype=torch.long, device=Z.device)


class DEN(AutoencoderClusterer):
    """Deep Embedding Network (Huang et al., 2014): locality-preserving, group-sparse embedding, then k-means.

    Steps: pretrain the autoencoder (shared, cached pretraining), build the k-NN graph of the input
    (``n_neighbors``, heat-kernel weights, ``dclib.graphs.knn_graph``), split the embedding
    coordinates into ``n_groups`` groups (default ``n_clusters``) by k-means on the coordinates
    (``coordinate_groups``), fine-tune the whole autoencoder for ``epochs`` epochs with Adam on L
    above, and run k-means (``n_init`` restarts) on the final embedding. The neighbours' embeddings
    in the locality term are those of the previous epoch (detached, refreshed every epoch), so a
    batch costs one forward pass; over an epoch every edge is visited from both ends.
    ``fit(X, y)`` uses ``y`` only to log ACC/NMI/ARI in ``history_``.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        dims: tuple[int, ...] = (784, 500, 500, 2000, 10),
        autoencoder="mlp",
        alpha: float = 0.05,
        beta: float = 0.01,
        n_neighbors: int = 5,
        n_groups: int | None = None,
        pretrain: str | None = "greedy",
        pretrain_epochs: int = 50,
        pretrain_lr: float = 1e-3,
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 1e-4,
        n_init: int = 10,
        cache: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.dims = dims
        self.autoencoder = autoencoder
        self.alpha = alpha
        self.beta = beta
        self.n_neighbors = n_neighbors
        self.n_groups = n_groups
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

    def _check_hyperparameters(self, n_samples: int) -> None:
        if int(self.epochs) < 0 or int(self.batch_size) < 1:
            raise ValueError(f"epochs must be >= 0 and batch_size >= 1, got {self.epochs!r}, {self.batch_size!r}.")
        if self.alpha < 0 or self.beta < 0:
            raise ValueError(f"alpha and beta are weights >= 0, got {self.alpha!r} and {self.beta!r}.")
        if not 1 <= int(self.n_neighbors) < n_samples:
            raise ValueError(f"n_neighbors must be between 1 and n_samples - 1 = {n_samples - 1}, "
                             f"got {self.n_neighbors!r}.")

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        self._check_hyperparameters(len(X))
        ae = self.autoencoder_ = self._pretrained_autoencoder(X)
        ae.eval()
        z0 = embed(ae.encode, X)
        n_groups = int(self.n_clusters if self.n_groups is None else self.n_groups)
        self.groups_ = coordinate_groups(z0, n_groups, self.random_state)
        self.scale_ = float((z0 - z0.mean(0)).pow(2).sum(1).mean().sqrt().clamp_min(1e-12))
        W = knn_graph(X, int(self.n_neighbors)).tocsr()  # directed: row i holds i's k neighbours
        k = int(self.n_neighbors)
        nbr = torch.as_tensor(W.indices.reshape(len(X), k), dtype=torch.long, device=self.device_)
        weights = torch.as_tensor(W.data.reshape(len(X), k), dtype=torch.float32, device=self.device_)
        state = {"z": z0}
        optimizer = torch.optim.Adam(ae.parameters(), lr=self.lr)
        s = self.scale_

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            x = X[idx]
            z = ae.encode(x)
            rec = reconstruction_loss(ae.decode(z), x.reshape(len(x), -1))
            local = locality_preserving_loss(z / s, state["z"][nbr[idx]] / s, weights[idx])
            sparse = group_sparsity_loss(z / s, n_groups, self.groups_)
            return {"loss": rec + self.alpha * local + self.beta * sparse, "reconstruction": rec,
                    "locality": local, "group_sparsity": sparse}

        metrics = History()

        def after_epoch(epoch: int, means: dict[str, float]) -> bool:
            ae.eval()
            state["z"] = embed(ae.encode, X)
            if y is not None:
                metrics.log(**self._log_metrics(fit_kmeans(state["z"], self.n_clusters, 1, self.random_state).labels_,
                                                y))
            ae.train()
            return False

        ae.train()
        if int(self.epochs) > 0:
            epoch_history = train(
                step, optimizer, len(X), epochs=int(self.epochs), batch_size=int(self.batch_size),
                device=self.device_, generator=self._generator(2), after_epoch=after_epoch, desc="DEN",
                show_progress=self.verbose,
            )
            self.history_.update(epoch_history)
            self.history_.update(metrics)
        ae.eval()
        self.kmeans_ = fit_kmeans(embed(ae.encode, X), self.n_clusters, self.n_init, self.random_state)
        self.labels_ = self.kmeans_.labels_.astype(np.int64)
        self.cluster_centers_ = self.kmeans_.cluster_centers_

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        self.autoencoder_.eval()
        z = embed(self.autoencoder_.encode, X).cpu().numpy().astype(np.float64)
        return self.kmeans_.predict(z).astype(np.int64)
