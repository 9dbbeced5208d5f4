"""DEC and IDEC: self-training on a sharpened target distribution in an autoencoder's embedding.

DEC minimises L = KL(P‖Q) = Σ_i Σ_j p_ij log(p_ij / q_ij), where q is the Student-t soft assignment
of the embedding z_i = f(x_i) to trainable centroids μ_j and P the target distribution, recomputed
on the whole dataset every ``update_interval`` iterations and held fixed in between.
IDEC keeps the decoder and minimises L_rec + γ·KL(P‖Q) so the embedding keeps local structure.
Derived in ``notebooks/02_dec_derivation.ipynb``; trained step by step in ``03_dec_training``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .. import distributed as dist
from ..losses import dec_loss, reconstruction_loss, student_t_assignment
from ..train import History, embed, train
from .base import AutoencoderClusterer
from .baselines import fit_kmeans

__all__ = ["DEC", "IDEC"]


class DEC(AutoencoderClusterer):
    """Deep Embedded Clustering (Xie et al., 2016).

    Steps: pretrain the autoencoder (``pretrain="greedy"`` is the paper's stacked denoising
    pretraining), initialise μ by k-means on the embedding (``n_init`` restarts), then train
    the encoder and μ with SGD+momentum on KL(P‖Q). Stops when fewer than ``tol`` of the points
    change cluster between two target updates, or after ``max_iter`` iterations.
    ``fit(X, y)`` uses ``y`` only to log ACC/NMI/ARI in ``history_``.

    Under ``torchrun`` (``dclib.distributed``) the fit is data parallel: each rank pretrains and
    trains on its share of every batch, embeds and soft-assigns its own rows, k-means runs once
    on the gathered embedding, and the target P is normalised by the global frequencies f_j.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        dims: tuple[int, ...] = (784, 500, 500, 2000, 10),
        autoencoder="mlp",
        alpha: float = 1.0,
        pretrain: str | None = "greedy",
        pretrain_epochs: int = 50,
        pretrain_lr: float = 1e-3,
        pretrain_augment=None,
        update_interval: int = 140,
        tol: float = 0.001,
        batch_size: int = 256,
        lr: float = 0.01,
        momentum: float = 0.9,
        max_iter: int = 20000,
        n_init: int = 20,
        cache: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.dims = dims
        self.autoencoder = autoencoder
        self.alpha = alpha
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.pretrain_augment = pretrain_augment
        self.update_interval = update_interval
        self.tol = tol
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.max_iter = max_iter
        self.n_init = n_init
        self.cache = cache
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # The two hooks IDEC overrides -------------------------------------------------------
    def _trainable_parameters(self) -> list[nn.Parameter]:
        """DEC drops the decoder: only the encoder and the centroids are trained."""
        encoder = [p for name, p in self.autoencoder_.named_parameters() if not name.startswith("decoder")]
        return [*encoder, self.centroids_]

    def _loss(self, x: torch.Tensor, p: torch.Tensor) -> dict[str, torch.Tensor]:
        q = student_t_assignment(self.autoencoder_.encode(x), self.centroids_, self.alpha)
        kl = dec_loss(p, q, reduction="mean")
        return {"loss": kl, "kl": kl}

    # -------------------------------------------------------------------------------------
    def _check_hyperparameters(self) -> None:
        for name in ("update_interval", "batch_size", "max_iter"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        if not 0 <= self.tol < 1:
            raise ValueError(f"tol is a fraction of points in [0, 1), got {self.tol!r}.")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be positive, got {self.alpha!r}.")

    def _soft_assign_all(self, X: torch.Tensor) -> torch.Tensor:
        self.autoencoder_.eval()
        return embed(lambda x: student_t_assignment(self.autoencoder_.encode(x), self.centroids_, self.alpha), X)

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        self._check_hyperparameters()
        self.autoencoder_ = self._pretrained_autoencoder(X)
        self.autoencoder_.eval()
        Z = dist.gather_embeddings(embed(self.autoencoder_.encode, dist.shard_rows(X)))
        kmeans = dist.on_rank0(lambda: fit_kmeans(Z, self.n_clusters, self.n_init, self.random_state))
        self.initial_labels_ = kmeans.labels_.astype(np.int64)
        centers = torch.as_tensor(kmeans.cluster_centers_, dtype=torch.float32, device=self.device_)
        self.centroids_ = nn.Parameter(centers)
        optimizer = torch.optim.SGD(self._trainable_parameters(), lr=self.lr, momentum=self.momentum)

        # What the step reads lives in tensors updated in place (the target P, refreshed every
        # ``update_interval`` iterations): on a GPU each step is a replayed CUDA graph (``train``'s
        # ``cuda_graph``), which re-runs kernels on fixed addresses, not this Python.
        target = torch.zeros(len(X), self.n_clusters, device=self.device_)
        state: dict = {"labels": None, "loss_sum": torch.zeros((), device=self.device_), "updated_at": None}

        def update_target(iteration: int) -> bool:
            """Every ``update_interval`` iterations: new P on all data, convergence test."""
            if iteration % self.update_interval:
                return False
            q = self._soft_assign_all(dist.shard_rows(X))  # this rank's rows (all of them in one process)
            self.autoencoder_.train()
            labels = dist.gather_rows(q.argmax(1))
            changed = 1.0 if state["labels"] is None else float((labels != state["labels"]).float().mean())
            since = 0 if state["updated_at"] is None else iteration - state["updated_at"]  # batches summed
            loss = float(dist.all_mean(state["loss_sum"])) / since if since else math.nan
            self.history_.log(
                iteration=iteration, loss=loss, label_change=changed,
                **self._log_metrics(labels.cpu().numpy(), y),
            )
            target.copy_(dist.gather_rows(dist.global_target_distribution(q).detach()))
            state.update(labels=labels, updated_at=iteration)
            state["loss_sum"].zero_()
            return state["labels"] is not None and iteration > 0 and changed < self.tol

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            return self._loss(X[idx], target[idx])

        def after_batch(iteration: int, idx: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
            state["loss_sum"].add_(terms["loss"].detach())  # on the device: no sync

        n_batches = math.ceil(len(X) / self.batch_size)
        self.autoencoder_.train()
        self.epoch_history_ = train(
            step, optimizer, len(X), epochs=math.ceil(self.max_iter / n_batches) + 1,
            batch_size=self.batch_size, device=self.device_, generator=self._generator(2),
            before_batch=update_target, after_batch=after_batch, max_iter=self.max_iter,
            desc=type(self).__name__, show_progress=self.verbose, history=History(),
            cuda_graph=True, modules=(self.autoencoder_,),
        )
        self.n_iter_ = int(self.epoch_history_["iteration"][-1]) if self.epoch_history_ else 0
        changes = self.history_["label_change"]
        self.converged_ = len(changes) > 1 and changes[-1] < self.tol
        q = self._soft_assign_all(dist.shard_rows(X))
        self.labels_ = dist.gather_rows(q.argmax(1)).cpu().numpy().astype(np.int64)
        self.cluster_centers_ = self.centroids_.detach().cpu().numpy()

    def predict_proba(self, X) -> np.ndarray:
        """The soft assignment q of each sample (rows sum to 1)."""
        return self._soft_assign_all(self._check_X_predict(X)).cpu().numpy()

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        return self._soft_assign_all(X).argmax(1).cpu().numpy().astype(np.int64)


class IDEC(DEC):
    """Improved DEC (Guo et al., 2017): keep the decoder, minimise L_rec + γ·KL(P‖Q).

    The reconstruction term stops the clustering loss from distorting the embedding's local
    structure — the survey's L = λ·L_rec + (1−λ)·L_clust framework with γ = (1−λ)/λ.
    """

    def __init__(self, n_clusters: int = 10, gamma: float = 0.1, **kwargs):
        super().__init__(n_clusters=n_clusters, **kwargs)
        self.gamma = gamma

    def get_params(self, deep: bool = True) -> dict:
        params = super().get_params(deep)
        params["gamma"] = self.gamma
        return params

    @classmethod
    def _get_param_names(cls):
        return sorted({*DEC._get_param_names(), "gamma"})

    def _trainable_parameters(self) -> list[nn.Parameter]:
        return [*self.autoencoder_.parameters(), self.centroids_]

    def _loss(self, x: torch.Tensor, p: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.autoencoder_.encode(x)
        q = student_t_assignment(z, self.centroids_, self.alpha)
        kl = dec_loss(p, q, reduction="mean")
        rec = reconstruction_loss(self.autoencoder_.decode(z), x)
        return {"loss": rec + self.gamma * kl, "kl": kl, "reconstruction": rec}
