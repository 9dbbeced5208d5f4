"""DAC: Deep Adaptive Clustering — cluster by classifying pairs as "same" or "different".

A conv net maps each image to a softmax vector p_i; the similarity of two images is the cosine
g_ij = p_i·p_j / (‖p_i‖‖p_j‖) ∈ [0, 1]. Pairs with g_ij > u(λ) are labelled similar (r_ij = 1),
pairs with g_ij < l(λ) dissimilar (r_ij = 0), the rest are left out, and the network minimises

    E(θ; λ) = Σ_ij v_ij [−r_ij log g_ij − (1 − r_ij) log(1 − g_ij)]     (v_ij = 1 for selected pairs)

while λ grows each epoch, so training moves from the few confident pairs to almost all of them
(curriculum learning); it stops when u(λ) ≤ l(λ). Clusters are argmax_k p_ik.
Derived in ``notebooks/08_discriminative_methods.ipynb``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..augment import Augment, resolve_augment
from ..losses import dac_loss, dac_pair_labels, dac_similarity, dac_thresholds
from ..models import IICNet
from ..train import embed, train
from .base import BaseClusterer

__all__ = ["DAC", "DACNet", "DAC_AUGMENT"]

# The authors' MNIST augmentation: small rotations, shifts, zooms and intensity changes.
DAC_AUGMENT = Augment(degrees=10.0, scale=(0.95, 1.05), shear=0.0, translate=0.1, contrast=0.05)


class DACNet(nn.Module):
    """IIC's conv trunk, then the DAC head Linear-BN-ReLU-Linear-BN-ReLU-softmax with K units.

    The head follows the authors' code: after BN and ReLU the K outputs of different images
    differ from the start, so the initial similarities spread over [0, 1] instead of all being
    close to 1 (near-uniform softmax outputs would label every pair "similar").
    """

    def __init__(self, input_shape: tuple[int, ...], n_clusters: int, channels: tuple[int, ...] = (64, 128, 256)):
        super().__init__()
        self.trunk = IICNet(tuple(input_shape), n_clusters, 0, 1, tuple(channels)).trunk
        with torch.no_grad():
            n_features = self.trunk(torch.zeros(2, *input_shape)).shape[1]
        self.head = nn.Sequential(
            nn.Linear(n_features, n_clusters), nn.BatchNorm1d(n_clusters), nn.ReLU(),
            nn.Linear(n_clusters, n_clusters), nn.BatchNorm1d(n_clusters), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Cluster probabilities (n, K)."""
        return torch.softmax(self.head(self.trunk(x)), dim=1)


class DAC(BaseClusterer):
    """Deep Adaptive Image Clustering (Chang et al., 2017).

    Thresholds u(λ) = 0.95 − λ and l(λ) = 0.455 + 0.1λ (``dac_thresholds``); λ starts at 0 and
    after each epoch takes the paper's gradient step on u(λ) − l(λ), λ ← λ + 1.1·``eta``
    (η = 0.009 in the paper: u and l meet after about 46 epochs; a larger ``eta`` runs the same
    curriculum in fewer epochs). Training stops when u ≤ l or after ``epochs``. Pair labels are
    taken on the clean batch and the loss on an augmented copy (``augment``: True for the
    authors' MNIST augmentation, False for none, or an ``Augment``), as in the authors' code.
    ``fit(X, y)`` uses ``y`` only to log ACC/NMI/ARI per epoch in ``history_``.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        epochs: int = 50,
        eta: float = 0.009,
        batch_size: int = 256,
        lr: float = 1e-3,
        channels: tuple[int, ...] = (64, 128, 256),
        augment: Augment | bool = True,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.epochs = epochs
        self.eta = eta
        self.batch_size = batch_size
        self.lr = lr
        self.channels = channels
        self.augment = augment
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _probs(self, X: torch.Tensor) -> torch.Tensor:
        self.net_.eval()
        return embed(self.net_, X, batch_size=1024)

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        if X.dim() != 4:
            raise ValueError(
                f"DAC needs images of shape (n, C, H, W), got {tuple(X.shape)}; reshape flat pixels, "
                "e.g. X.reshape(-1, 1, 28, 28)."
            )
        if int(self.epochs) < 1 or int(self.batch_size) < 2 or self.eta <= 0:
            raise ValueError(f"epochs >= 1, batch_size >= 2 and eta > 0 needed, got {self.epochs!r}, "
                             f"{self.batch_size!r}, {self.eta!r}.")
        self.net_ = DACNet(tuple(X.shape[1:]), self.n_clusters, self.channels).to(self.device_)
        augment = resolve_augment(self.augment, default=DAC_AUGMENT)
        generator = self._generator(2)
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        state = {"lamb": 0.0}

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            x = X[idx]
            upper, lower = dac_thresholds(state["lamb"])
            if augment is None:
                p = p_labels = self.net_(x)
            else:
                with torch.no_grad():
                    p_labels = self.net_(x)
                p = self.net_(augment(x, generator))
            _, selected = dac_pair_labels(dac_similarity(p_labels), upper, lower)
            n = len(idx)
            return {"loss": dac_loss(p, upper, lower, p_labels), "selected": selected.sum() / max(n * (n - 1), 1)}

        def after_epoch(epoch: int, means: dict[str, float]) -> bool:
            upper, lower = dac_thresholds(state["lamb"])
            record = {"lamb": state["lamb"], "upper": upper, "lower": lower}
            if y is not None:
                record.update(self._log_metrics(self._probs(X).argmax(1).cpu().numpy(), y))
            for key, value in record.items():
                self.history_.setdefault(key, []).append(value)
            state["lamb"] += 1.1 * self.eta  # λ ← λ − η ∂(u − l)/∂λ
            self.net_.train()
            upper, lower = dac_thresholds(state["lamb"])
            self.converged_ = upper <= lower
            return self.converged_

        self.converged_ = False
        self.net_.train()
        epoch_history = train(
            step, optimizer, len(X), epochs=int(self.epochs), batch_size=int(self.batch_size),
            device=self.device_, generator=generator, after_epoch=after_epoch, desc="DAC",
            show_progress=self.verbose, drop_last=len(X) % int(self.batch_size) == 1,  # batch norm needs 2+ samples
        )
        self.history_.update(epoch_history)
        self.lamb_ = state["lamb"]
        self.labels_ = self._predict(X)

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        return self._probs(X).argmax(1).cpu().numpy().astype(np.int64)

    def predict_proba(self, X) -> np.ndarray:
        """The softmax output p_i (batch norm in evaluation mode)."""
        return self._probs(self._check_X_predict(X)).cpu().numpy()
