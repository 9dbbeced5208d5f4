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

import math

import numpy as np
import torch
from torch import nn

from ..losses import embedding_cross_entropy
from ..train import History, embed, train
from .base import AutoencoderClusterer
from .baselines import fit_kmeans

__all__ = ["EmbeddingClustering", "RepresentationNet", "calibrate_code_scale", "row_perplexities"]


def row_perplexities(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """exp(H(p_{·|i})) of each row of the conditional Student-t affinities p_{j|i} ∝ (1 + ‖z_i − z_j‖²/α)^(−(α+1)/2).

    The perplexity is the effective number of neighbours a point has: t-SNE sets each point's
    bandwidth so that it equals a chosen value (~5–50). Computed in log space, diagonal excluded.
    """
    log_k = -0.5 * (alpha + 1.0) * torch.log1p(torch.cdist(z, z).pow(2) / alpha)
    log_k = log_k.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))
    log_p = torch.log_softmax(log_k, dim=1)
    entropy = -(log_p.exp() * log_p.masked_fill(torch.isinf(log_p), 0.0)).sum(1)
    return entropy.exp()


@torch.no_grad()
def calibrate_code_scale(z: torch.Tensor, perplexity: float, alpha: float | None = None, iters: int = 60) -> float:
    """The factor s for which the codes s·z have median row perplexity ``perplexity`` (bisection on log s).

    Why: the Student-t kernel of the codes has a fixed bandwidth, so how many neighbours each point
    "sees" depends on the autoencoder's arbitrary scale. For the course's 25-epoch autoencoder on
    mnist5k a batch of 500 codes has a median perplexity of ~230 (almost every point is a
    neighbour: nearly flat targets). One global scale, chosen once as t-SNE chooses its bandwidths
    (lecture 11), makes the target independent of that scale. Perplexity falls as s grows.
    """
    n = len(z)
    if not 1.0 < perplexity < n - 1:
        raise ValueError(f"perplexity must be between 1 and the batch size − 1 = {n - 1}, got {perplexity!r}; "
                         "use a smaller perplexity or a larger batch_size.")
    alpha = 2.0 * z.shape[1] if alpha is None else alpha
    z = z.double()
    lo, hi = -12.0, 12.0  # log s
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if float(row_perplexities(z * math.exp(mid), alpha).quantile(0.5)) > perplexity:
            lo = mid  # too many neighbours: spread the codes further apart
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


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
    ``perplexity=None`` keeps the paper's fixed-bandwidth kernel on the codes; a number (e.g. 30)
    rescales the codes once (``calibrate_code_scale`` on a batch, stored as ``code_scale_``) so the
    target affinities have that many effective neighbours per point, as t-SNE does.
    ``batch_size`` is the batch of codes whose pairs the loss compares; the autoencoder pretrains at
    ``pretrain_batch_size`` (256, the course's), so it is the same cached autoencoder DEC and DEN start from.
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
        perplexity: float | None = None,
        pretrain: str | None = "greedy",
        pretrain_epochs: int = 50,
        pretrain_lr: float = 1e-3,
        pretrain_batch_size: int = 256,
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
        self.perplexity = perplexity
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.pretrain_batch_size = pretrain_batch_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.n_init = n_init
        self.cache = cache
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_hyperparameters(self) -> None:
        if int(self.pretrain_batch_size) < 1:
            raise ValueError(f"pretrain_batch_size must be a positive integer, got {self.pretrain_batch_size!r}.")
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
        self.code_scale_ = 1.0
        if self.perplexity is not None:
            sample = torch.randperm(len(Z), generator=self._generator(3), device=self.device_)[:batch]
            self.code_scale_ = calibrate_code_scale(Z[sample], float(self.perplexity), self.alpha_z)
        scale = self.code_scale_

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            z = Z[idx]
            return {"loss": embedding_cross_entropy(z * scale, self.net_(z), self.alpha_z, self.alpha_e)}

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
