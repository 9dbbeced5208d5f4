"""JULE: joint unsupervised learning of deep representations and image clusters (Yang et al., 2016).

Agglomerative clustering is unrolled as a recurrent process: in each *period*, the forward pass
merges clusters greedily by graph-degree linkage (GDL) on the k-NN graph of the current features,
and the backward pass updates the network with a weighted triplet loss on the current clusters,

    L = mean over triplets of −(γ·cos(f(x_i), f(x_j)) − cos(f(x_i), f(x_k))),

x_j a sample of x_i's cluster, x_k one of the nearest cluster by affinity. The new features give
a new k-NN graph for the next period's merges; the process stops at ``n_clusters``.
Derived in ``notebooks/11_structure_based.ipynb``; affinity and merging in ``dclib.graphs``.

What differs from the paper (on purpose, and why):

- merging: the pair with the largest GDL affinity is merged (plain GDL), where JULE chooses a
  cluster C_a and its nearest neighbour by A(C_b, C_a) + λ(A(C_b, C_a) − A(C_k, C_a)), a margin
  over the K_c-th neighbour cluster. The margin only changes the order of near-ties; dropping it
  keeps the merge rule one line and testable on hand-made point sets.
- the first period's graph is built on the input (pixels), not on a random network's features;
  later periods use the learned features. The initial clusters are the connected components of
  the 1-NN graph, as in the paper.
- the number of merges per period is a fraction ``merge_rate`` of the current clusters (the
  paper's unrolling rate η), and the network is trained ``epochs_per_period`` epochs per period.
- the triplet loss has no hinge by default (the paper's linear form); ``margin`` adds one.
- the last period absorbs fragments (clusters under ``min_cluster_size``) instead of letting them
  take a cluster's place. Greedy GDL leaves a few weakly linked handfuls of points to the end at
  scale: on all 70,000 MNIST images, JULE without the rule ended with clusters of 2–24 images.
- SGD's learning rate is 0.001 (the paper: 0.01). With 0.01 the network pushed small clusters
  so far apart that they lost every 2-path to their true cluster (2-D blobs: final ARI 0.75
  against 0.95 with 0.001 and 1.0 without any learning); see also the isolated-cluster rule of
  ``dclib.graphs.gdl_merge``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..graphs import fragment_size, gdl_affinity, gdl_merge, initial_clusters, knn_graph
from ..losses import jule_triplet_loss
from ..train import embed, train
from .base import BaseClusterer

__all__ = ["JULE", "JULENet"]


class JULENet(nn.Module):
    """The feature network: the paper's MNIST net for images, an MLP for flat features.

    Images: two blocks conv5x5 (``channels``)-BN-ReLU-maxpool2, then a linear layer to
    ``feature_dim``. Flat inputs: Linear-BN-ReLU (``hidden``), then a linear layer. The features
    are L2-normalised (the loss and the graph compare them by angle).
    """

    def __init__(self, input_shape: tuple[int, ...], feature_dim: int = 160, channels: tuple[int, int] = (50, 50),
                 hidden: int = 256):
        super().__init__()
        if len(input_shape) == 3:
            c1, c2 = channels
            self.trunk = nn.Sequential(
                nn.Conv2d(input_shape[0], c1, 5, padding=2), nn.BatchNorm2d(c1), nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.Conv2d(c1, c2, 5, padding=2), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
                nn.Flatten(),
            )
        else:
            self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.BatchNorm1d(hidden),
                                       nn.ReLU())
        with torch.no_grad():
            width = self.trunk.eval()(torch.zeros(2, *input_shape)).shape[1]
        self.head = nn.Linear(width, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.trunk(x)), dim=1)


class JULE(BaseClusterer):
    """Joint Unsupervised LEarning (Yang, Parikh & Batra, CVPR 2016), with plain GDL merging.

    ``n_neighbors`` is the k of the k-NN graph (K_s = 20 in the paper), ``merge_rate`` the
    fraction of clusters merged in each period, ``epochs_per_period`` the epochs of triplet
    training (SGD with momentum, ``lr``) between two merge phases, ``gamma`` the weight of the
    positive pair. ``min_cluster_size`` ("auto": 1 % of the mean cluster size, n / (100·K)) is the
    size under which a cluster of the last merge period is a fragment, absorbed into its most-linked
    cluster instead of taking a cluster's place (``dclib.graphs.gdl_merge``'s ``min_size``; 1 turns
    the rule off). ``history_`` has one row per period (clusters left, seconds, mean triplet loss,
    and ACC/NMI/ARI when ``fit`` gets ``y``). ``predict`` assigns a new sample to the cluster whose
    mean feature direction is closest (cosine). See the module docstring for the differences from
    the paper.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        n_neighbors: int = 20,
        feature_dim: int = 160,
        channels: tuple[int, int] = (50, 50),
        merge_rate: float = 0.5,
        epochs_per_period: int = 1,
        gamma: float = 2.0,
        margin: float | None = None,
        min_cluster_size: int | str = "auto",
        batch_size: int = 256,
        lr: float = 0.001,
        momentum: float = 0.9,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.feature_dim = feature_dim
        self.channels = channels
        self.merge_rate = merge_rate
        self.epochs_per_period = epochs_per_period
        self.gamma = gamma
        self.margin = margin
        self.min_cluster_size = min_cluster_size
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_hyperparameters(self, n_samples: int) -> None:
        if not 0 < self.merge_rate <= 1:
            raise ValueError(f"merge_rate is the fraction of clusters merged per period, in (0, 1]; "
                             f"got {self.merge_rate!r}.")
        if not 1 <= int(self.n_neighbors) < n_samples:
            raise ValueError(f"n_neighbors must be between 1 and n_samples - 1 = {n_samples - 1}, "
                             f"got {self.n_neighbors!r}.")
        if not (self.min_cluster_size == "auto" or (isinstance(self.min_cluster_size, int | np.integer)
                                                     and self.min_cluster_size >= 1)):
            raise ValueError(f"min_cluster_size must be 'auto' or an integer >= 1 (1: no fragment rule), "
                             f"got {self.min_cluster_size!r}.")
        if int(self.epochs_per_period) < 0 or int(self.batch_size) < 2:
            raise ValueError(f"epochs_per_period must be >= 0 and batch_size >= 2, got {self.epochs_per_period!r} "
                             f"and {self.batch_size!r}.")

    def _features(self, X: torch.Tensor) -> torch.Tensor:
        self.net_.eval()
        return embed(self.net_, X)

    def _triplet_sampler(self, labels: np.ndarray, W):
        """Random positives (same cluster) and negatives (the nearest cluster by GDL affinity), on the device."""
        dev = self.device_
        A = gdl_affinity(W, labels).tocsr()
        m = A.shape[0]
        nearest = np.arange(m)
        for a in range(m):  # m is small after the first merges; each row is a handful of entries
            row = slice(A.indptr[a], A.indptr[a + 1])
            nearest[a] = A.indices[row][np.argmax(A.data[row])] if A.indptr[a + 1] > A.indptr[a] else (a + 1) % m
        order = torch.as_tensor(np.argsort(labels, kind="stable"), device=dev)
        sizes = torch.as_tensor(np.bincount(labels, minlength=m), device=dev)
        starts = torch.cumsum(sizes, 0) - sizes
        lab = torch.as_tensor(labels, device=dev)
        nb = torch.as_tensor(nearest, device=dev)
        gen = self._generator(3 + len(self.history_.get("period", [])))

        def draw(clusters: torch.Tensor) -> torch.Tensor:
            u = torch.rand(len(clusters), generator=gen, device=dev)
            return order[starts[clusters] + (u * sizes[clusters]).long().clamp_max(sizes[clusters] - 1)]

        return lambda idx: (draw(lab[idx]), draw(nb[lab[idx]]))

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        n = len(X)
        self._check_hyperparameters(n)
        k = int(self.n_neighbors)
        self.net_ = JULENet(tuple(X.shape[1:]), int(self.feature_dim), tuple(self.channels)).to(self.device_)
        optimizer = torch.optim.SGD(self.net_.parameters(), lr=self.lr, momentum=self.momentum)
        start = time.perf_counter()
        W = knn_graph(X.reshape(n, -1), k)
        labels = initial_clusters(W)
        if labels.max() + 1 < self.n_clusters:  # tiny data: start from singletons instead
            labels = np.arange(n)
        self.initial_n_clusters_ = int(labels.max()) + 1
        self.min_cluster_size_ = (fragment_size(n, int(self.n_clusters)) if self.min_cluster_size == "auto"
                                  else int(self.min_cluster_size))
        period = 0
        while True:
            m = int(labels.max()) + 1
            target = max(int(self.n_clusters), math.ceil(m * (1 - self.merge_rate)))
            target = min(target, m - 1) if m > self.n_clusters else m
            done = target == self.n_clusters
            # the last period's fragments are absorbed rather than left as clusters (dclib.graphs.gdl_merge)
            labels = gdl_merge(W, labels, target, min_size=self.min_cluster_size_ if done else 1)
            loss = math.nan
            if not done and int(self.epochs_per_period) > 0:
                sample = self._triplet_sampler(labels, W)

                def step(idx: torch.Tensor, sample=sample) -> torch.Tensor:
                    pos, neg = sample(idx)
                    f = self.net_(torch.cat([X[idx], X[pos], X[neg]]))
                    fa, fp, fn = f.split(len(idx))
                    return jule_triplet_loss(fa, fp, fn, self.gamma, self.margin)

                self.net_.train()
                epochs = train(step, optimizer, n, epochs=int(self.epochs_per_period), batch_size=int(self.batch_size),
                               device=self.device_, generator=self._generator(2 + period), desc=f"JULE period {period}",
                               show_progress=self.verbose, drop_last=n % int(self.batch_size) == 1)
                loss = epochs["loss"][-1]
                W = knn_graph(self._features(X), k)
            self.history_.log(period=period, n_clusters=target, loss=loss, seconds=time.perf_counter() - start,
                              **self._log_metrics(labels, y))
            period += 1
            if done:
                break
        self.labels_ = labels.astype(np.int64)
        feats = self._features(X)
        centers = torch.zeros(self.n_clusters, feats.shape[1], device=self.device_)
        centers.index_add_(0, torch.as_tensor(self.labels_, device=self.device_), feats)
        self.cluster_centers_ = F.normalize(centers, dim=1)

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        return (self._features(X) @ self.cluster_centers_.T).argmax(1).cpu().numpy().astype(np.int64)
