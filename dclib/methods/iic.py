"""IIC: Invariant Information Clustering — no decoder, no k-means, clusters straight from a softmax.

IIC maximises the mutual information I(z; z') between the cluster assignments of an image and
of a random augmentation of it: loss = −Σ_cc' P_cc' log(P_cc' / (P_c P_c')), P the joint of
``iic_joint``. I = H(z) − H(z|z') is maximal for confident, balanced clusters, so the one-cluster
collapse is ruled out. Derived in ``notebooks/05_iic_mutual_information.ipynb``.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import distributed as dist
from ..augment import Augment
from ..losses import iic_loss
from ..models import IICNet
from ..train import History, embed, train
from .base import BaseClusterer

__all__ = ["IIC"]


class IIC(BaseClusterer):
    """Invariant Information Clustering (Ji, Henriques & Vedaldi, 2019).

    Each epoch trains the over-clustering head (``overcluster_k`` clusters) for one pass and
    the main head (``n_clusters``) for one pass, as in the paper; every head has ``n_heads``
    sub-heads. ``predict`` uses the main sub-head with the lowest IIC loss on the training data
    (chosen without labels). ``fit(X, y)`` logs per-sub-head ACC when ``y`` is given.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        overcluster_k: int = 50,
        n_heads: int = 5,
        epochs: int = 100,
        batch_size: int = 700,
        lr: float = 1e-4,
        lamb: float = 1.0,
        channels: tuple[int, ...] = (64, 128, 256),
        augment: Augment | None = None,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.overcluster_k = overcluster_k
        self.n_heads = n_heads
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lamb = lamb
        self.channels = channels
        self.augment = augment
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _probs(self, X: torch.Tensor, head: str = "main") -> torch.Tensor:
        """(n_heads, n, k) probabilities on clean images, in eval mode."""
        self.net_.eval()
        return embed(lambda x: self.net_(x, head).transpose(0, 1), X, batch_size=1024).transpose(0, 1)

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        if X.dim() != 4:
            raise ValueError(
                f"IIC needs images of shape (n, C, H, W), got {tuple(X.shape)}; reshape flat pixels, "
                "e.g. X.reshape(-1, 1, 28, 28)."
            )
        if self.n_heads < 1 or self.epochs < 1:
            raise ValueError("n_heads and epochs must be >= 1.")
        self.net_ = IICNet(tuple(X.shape[1:]), self.n_clusters, self.overcluster_k, self.n_heads,
                           self.channels).to(self.device_)
        augment = self.augment or Augment()
        generator = self._generator(2)
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        heads = ["over", "main"] if self.overcluster_k else ["main"]
        state = {"pass": 0}

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            x = X[idx]
            both = torch.cat([x, augment(x, generator)])
            probs = self.net_(both, heads[state["pass"] % len(heads)])  # (n_heads, 2b, k)
            b = len(idx)
            losses = torch.stack([dist.global_iic_loss(p[:b], p[b:], lamb=self.lamb) for p in probs])
            return {"loss": losses.mean(), **{f"subhead{h}": losses[h] for h in range(self.n_heads)}}

        def after_pass(pass_index: int, means: dict[str, float]) -> bool:
            head = heads[pass_index % len(heads)]
            dist.broadcast_buffers(self.net_)  # batch-norm statistics: rank 0's on every rank
            record = {f"loss_{head}": means["loss"]}
            if head == "main":
                record.update({f"loss_main_{h}": means[f"subhead{h}"] for h in range(self.n_heads)})
                if y is not None:
                    labels = self._probs(X).argmax(2).cpu().numpy()
                    record.update({f"acc_main_{h}": self._log_metrics(labels[h], y)["acc"]
                                   for h in range(self.n_heads)})
                self.history_.log(epoch=pass_index // len(heads), **pending, **record)
                pending.clear()
            else:
                pending.update(record)
            state["pass"] += 1
            self.net_.train()
            return False

        pending: dict[str, float] = {}
        self.net_.train()
        self.epoch_history_ = train(
            step, optimizer, len(X), epochs=self.epochs * len(heads), batch_size=self.batch_size,
            device=self.device_, generator=generator, after_epoch=after_pass, desc="IIC",
            show_progress=self.verbose, history=History(), sample_mean=False,
        )
        dist.sync_generator(generator)  # the same augmented pairs, hence the same sub-head, on all ranks
        self._choose_subhead(X, augment, generator)

    @torch.no_grad()
    def _choose_subhead(self, X: torch.Tensor, augment: Augment, generator: torch.Generator) -> None:
        """Pick the main sub-head with the lowest IIC loss on (clean, augmented) training pairs."""
        self.net_.eval()
        p = self._probs(X)
        x_aug = torch.cat([augment(X[i:i + 1024], generator) for i in range(0, len(X), 1024)])
        p_aug = self._probs(x_aug)
        self.subhead_losses_ = np.array([float(iic_loss(p[h], p_aug[h], lamb=self.lamb)) for h in range(len(p))])
        self.best_subhead_ = int(self.subhead_losses_.argmin())
        self.subhead_labels_ = p.argmax(2).cpu().numpy().astype(np.int64)
        self.labels_ = self.subhead_labels_[self.best_subhead_]

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        return self._probs(X)[self.best_subhead_].argmax(1).cpu().numpy().astype(np.int64)

    def predict_proba(self, X, subhead: int | None = None) -> np.ndarray:
        """Cluster probabilities from the chosen (or the given) main sub-head."""
        h = self.best_subhead_ if subhead is None else subhead
        return self._probs(self._check_X_predict(X))[h].cpu().numpy()

    def transform(self, X) -> np.ndarray:
        """The trunk's features (for t-SNE pictures)."""
        Xt = self._check_X_predict(X)
        self.net_.eval()
        return embed(self.net_.trunk, Xt, batch_size=1024).cpu().numpy()
