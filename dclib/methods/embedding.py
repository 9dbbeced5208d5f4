"""Learning an embedding space for clustering from deep representations (parametric t-SNE style).

A pretrained autoencoder gives codes z_i = f(x_i); a representation network h maps them to an
embedding e_i = h(z_i), trained on mini-batches to minimise the cross-entropy

    L = −Σ_{i≠j} p_ij log q_ij,

where p_ij are joint Student-t affinities of the codes with α = 2·dim(Z) degrees of freedom
(almost Gaussian: it measures who is a neighbour of whom) and q_ij those of the embedding with
α = 1 (heavy-tailed: moderately far points can be put far away, so the clusters separate —
t-SNE's answer to the crowding problem). k-means on the embedding gives the clusters.
Loss: ``dclib.losses.embedding_cross_entropy``; derived in ``notebooks/11_structure_based.ipynb``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..losses import embedding_cross_entropy
from ..train import History, embed, train
from .base import AutoencoderClusterer
from .baselines import fit_kmeans

__all__ = ["EmbeddingClustering", "RepresentationNet"]


class RepresentationNet(nn.Module):
    """h: the MLP z → e (Linear-ReLU for each hidden width, then a linear embedding layer)."""

    def __init__(self, in_features: int, out_features: int, hidden: tuple[int, ...] = (500, 500)):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, out_features))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class EmbeddingClustering(AutoencoderClusterer):
    """Embedding-space clustering from deep representations (the issue's "embedding-space method").

    Steps: pretrain the autoencoder (shared, cached pretraining; it stays fixed afterwards),
    compute the codes Z once, train h (``hidden`` widths, output ``embedding_dim``) for ``epochs``
    epochs with Adam on ``embedding_cross_entropy`` over random batches of ``batch_size`` codes (the
    pairwise affinities are O(batch²), never O(n²)), then run k-means (``n_init`` restarts) on
    the embedding. ``alpha_z=None`` means 2·dim(Z); ``alpha_e`` = 1 is t-SNE's Cauchy kernel.
    ``fit(X, y)`` uses ``y`` only to log ACC/NMI/ARI in ``history_``.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        dims: tuple[int, ...] = (784, 500, 500, 2000, 10),
        autoencoder="mlp",
        hidden: tuple[int, ...] = (500, 500),
        embedding_dim: int = 10,
        alpha_z: float | None = None,
        alpha_e: float = 1.0,
        pretrain: str | None = "greedy",
        pretrain_epochs: int = 50,
        pretrain_lr: float = 1e-3,
        epochs: int = 30,
        batch_size: int = 500,
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
        self.hidden = hidden
        self.embedding_dim = embedding_dim
        self.alpha_z = alpha_z
        self.alpha_e = alpha_e
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
        if int(self.epochs) < 1 or int(self.batch_size) < 2 or int(self.embedding_dim) < 1:
            raise ValueError(f"epochs >= 1, batch_size >= 2 and embedding_dim >= 1 needed, got {self.epochs!r}, "
                             f"{self.batch_size!r} and {self.embedding_dim!r}.")
        if self.alpha_e <= 0 or (self.alpha_z is not None and self.alpha_z <= 0):
            raise ValueError(f"alpha_z and alpha_e are degrees of freedom > 0, got {self.alpha_z!r} and "
                             f"{self.alpha_e!r}.")

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        self.autoencoder_.eval()
        self.net_.eval()
        return embed(lambda x: self.net_(self.autoencoder_.encode(x)), X)

    def embedding(self, X) -> np.ndarray:
        """The learned embedding e = h(f(x)) of each sample (``transform`` gives the code z = f(x))."""
        return self._embed(self._check_X_predict(X)).cpu().numpy()

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        self._check_hyperparameters()
        ae = self.autoencoder_ = self._pretrained_autoencoder(X)
        ae.eval()
        Z = embed(ae.encode, X)
        self.net_ = RepresentationNet(Z.shape[1], int(self.embedding_dim), tuple(self.hidden)).to(self.device_)
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        batch = min(int(self.batch_size), len(X))

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            z = Z[idx]
            return {"loss": embedding_cross_entropy(z, self.net_(z), self.alpha_z, self.alpha_e)}

        metrics = History()

        def after_epoch(epoch: int, means: dict[str, float]) -> bool:
            if y is not None:
                e = self._embed(X)
                metrics.log(**self._log_metrics(fit_kmeans(e, self.n_clusters, 1, self.random_state).labels_, y))
            self.net_.train()
            return False

        self.net_.train()
        epoch_history = train(
            step, optimizer, len(X), epochs=int(self.epochs), batch_size=batch, device=self.device_,
            generator=self._generator(2), after_epoch=after_epoch, desc="EmbeddingClustering",
            show_progress=self.verbose, drop_last=len(X) % batch == 1,  # a batch of one point has no pair
        )
        self.history_.update(epoch_history)
        self.history_.update(metrics)
        self.kmeans_ = fit_kmeans(self._embed(X), self.n_clusters, self.n_init, self.random_state)
        self.labels_ = self.kmeans_.labels_.astype(np.int64)
        self.cluster_centers_ = self.kmeans_.cluster_centers_

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        return self.kmeans_.predict(self._embed(X).cpu().numpy().astype(np.float64)).astype(np.int64)
