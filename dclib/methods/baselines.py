"""Baselines every deep method must beat: k-means on pixels/PCA, and autoencoder + k-means.

Lesson: ``notebooks/01_baselines_autoencoders.ipynb``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from ..train import embed
from .base import AutoencoderClusterer, BaseClusterer

__all__ = ["KMeansBaseline", "AEKMeans", "fit_kmeans"]


def fit_kmeans(Z: torch.Tensor | np.ndarray, n_clusters: int, n_init: int, random_state) -> KMeans:
    """scikit-learn's k-means (k-means++, ``n_init`` restarts) on an embedding, kept on the CPU."""
    Z = Z.detach().cpu().numpy() if isinstance(Z, torch.Tensor) else np.asarray(Z)
    return KMeans(n_clusters, n_init=n_init, random_state=random_state).fit(Z.astype(np.float64))


class KMeansBaseline(BaseClusterer):
    """k-means on raw features (``features="raw"``) or on ``n_components`` PCA components."""

    def __init__(
        self,
        n_clusters: int = 10,
        features: str = "raw",
        n_components: int = 50,
        n_init: int = 10,
        device: str = "cpu",
        random_state: int | None = None,
    ):
        self.n_clusters = n_clusters
        self.features = features
        self.n_components = n_components
        self.n_init = n_init
        self.device = device
        self.random_state = random_state

    def _features(self, X: torch.Tensor, fit: bool) -> np.ndarray:
        flat = X.reshape(len(X), -1).cpu().numpy().astype(np.float64)
        if self.features == "raw":
            return flat
        if fit:
            n_comp = min(self.n_components, *flat.shape)
            self.pca_ = PCA(n_comp, random_state=self.random_state).fit(flat)
        return self.pca_.transform(flat)

    def _fit(self, X, y):
        if self.features not in ("raw", "pca"):
            raise ValueError(f"features must be 'raw' or 'pca', got {self.features!r}.")
        F = self._features(X, fit=True)
        self.kmeans_ = KMeans(self.n_clusters, n_init=self.n_init, random_state=self.random_state).fit(F)
        self.labels_ = self.kmeans_.labels_.astype(np.int64)
        self.cluster_centers_ = self.kmeans_.cluster_centers_
        self.history_.log(inertia=self.kmeans_.inertia_, **self._log_metrics(self.labels_, y))

    def _predict(self, X):
        return self.kmeans_.predict(self._features(X, fit=False)).astype(np.int64)

    def transform(self, X) -> np.ndarray:
        """The features k-means sees (raw pixels or PCA components)."""
        return self._features(self._check_X_predict(X), fit=False)


class AEKMeans(AutoencoderClusterer):
    """Pretrain an autoencoder on reconstruction, then run k-means on its embedding.

    The simplest deep clustering pipeline ("pretrain, then cluster"); DEC, IDEC and DCN start
    from exactly this point and then keep training with a clustering loss.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        dims: tuple[int, ...] = (784, 500, 500, 2000, 10),
        autoencoder="mlp",
        pretrain: str | None = "end-to-end",
        pretrain_epochs: int = 50,
        batch_size: int = 256,
        pretrain_lr: float = 1e-3,
        pretrain_augment=None,
        n_init: int = 20,
        cache: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.dims = dims
        self.autoencoder = autoencoder
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.batch_size = batch_size
        self.pretrain_lr = pretrain_lr
        self.pretrain_augment = pretrain_augment
        self.n_init = n_init
        self.cache = cache
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, y):
        self.autoencoder_ = self._pretrained_autoencoder(X)
        self.autoencoder_.eval()
        Z = embed(self.autoencoder_.encode, X)
        self.kmeans_ = fit_kmeans(Z, self.n_clusters, self.n_init, self.random_state)
        self.labels_ = self.kmeans_.labels_.astype(np.int64)
        self.cluster_centers_ = self.kmeans_.cluster_centers_
        self.history_.log(inertia=self.kmeans_.inertia_, **self._log_metrics(self.labels_, y))

    def _predict(self, X):
        self.autoencoder_.eval()
        Z = embed(self.autoencoder_.encode, X).cpu().numpy().astype(np.float64)
        return self.kmeans_.predict(Z).astype(np.int64)
