"""Lecture 07's experiment grid, defined once for the notebook and for ``benchmarks/taxonomy_grid.py``.

The taxonomy of Aljalbout et al. (2018) is run one axis at a time on ``mnist5k``: the clustering
losses swapped under one MLP autoencoder, the λ schedules and joint vs alternating training for
hardening, DEC on the MLP vs DBC on a convolutional autoencoder, and the taxonomy paper's own
method. The lecture shows one seed live; the benchmark repeats every experiment over seeds and
writes one CSV row per (experiment, seed), which the lecture reads back for mean ± std. Both import
the configuration (``LAMDA``, ``GRID``, the epoch budgets in ``Settings``) and the builders from
here, so the two cannot drift. Lesson: ``notebooks/07_taxonomy.ipynb``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from .methods.baselines import fit_kmeans
from .methods.dbc import DBC
from .methods.dec import DEC
from .methods.deep_clusterer import DeepClusterer, taxonomy_method
from .metrics import evaluate
from .models import ConvAutoencoder

__all__ = [
    "K", "DIMS", "BATCH_SIZE", "LR", "CONV_CHANNELS", "LAMDA", "GRID", "COLUMNS", "Settings", "FULL", "FAST",
    "settings", "Experiment", "conv_autoencoder", "grid_model", "dec_model", "dbc_model", "taxonomy_model",
    "experiments", "run_experiment", "summarise",
]

K = 10
DIMS = (784, 500, 500, 2000, 10)  # the MLP autoencoder of lectures 03 and 06 (same settings: the cache is shared)
BATCH_SIZE = 256
LR = 1e-3
# Half the DCEC channels: the full (32, 64, 128) costs about 5x an MLP epoch on a 2-core CPU, this one about 1.5x.
CONV_CHANNELS = (16, 32, 64)

#: λ per clustering loss, set so that λ·L_clust and L_rec are of similar size at the start.
LAMDA = {"hardening": 0.1, "kmeans": 0.01, "hardening+balanced": 0.1, "group_sparsity": 0.002, "classification": 0.02}
#: (cluster loss, schedule, mode): first the losses, then the schedules and the mode for hardening.
GRID = (
    [(loss, "constant", "joint") for loss in LAMDA]
    + [("hardening", schedule, "joint") for schedule in ("linear", "pretrain_then_joint", "step")]
    + [("hardening", "constant", "alternating"), ("kmeans", "constant", "alternating")]
)

#: The CSV columns of the benchmark, one row per (experiment, seed).
COLUMNS = (
    "experiment", "cluster_loss", "schedule", "mode", "architecture", "seed",
    "acc_own", "nmi_own", "ari_own", "acc_kmeans", "nmi_kmeans", "ari_kmeans",
    "acc_start", "smallest_cluster", "epochs", "pretrain_epochs", "pretrain_seconds", "pretrain_from_cache",
    "seconds", "n_samples", "device",
)


@dataclass(frozen=True)
class Settings:
    """The budgets of one run of the grid; ``FAST`` shrinks sizes only, never the code path."""

    n_samples: int = 5000  # mnist5k has 5,000 digits
    pretrain_epochs: int = 25  # the MLP autoencoder
    grid_epochs: int = 6  # training epochs of each grid run
    schedule_epochs: int = 3  # ramp length / λ = 0 epochs / step length of the schedules
    conv_pretrain_epochs: int = 10  # the convolutional autoencoder (DBC and the taxonomy method)
    dec_iter: int = 300  # DEC / DBC iterations (mini-batches of 256), target updated every 20
    taxonomy_epochs: int = 5  # joint epochs of the taxonomy method


FULL = Settings()
FAST = Settings(n_samples=500, pretrain_epochs=2, grid_epochs=2, schedule_epochs=1, conv_pretrain_epochs=1,
                dec_iter=10, taxonomy_epochs=1)


def settings(fast: bool, **overrides) -> Settings:
    """``FAST`` or ``FULL``, with any field overridden (e.g. ``conv_pretrain_epochs=50`` on a GPU)."""
    return replace(FAST if fast else FULL, **overrides)


def conv_autoencoder(seed: int) -> ConvAutoencoder:
    """The lecture's convolutional autoencoder, initialised from ``seed`` without touching the global RNG.

    ``torch.manual_seed(seed)`` then the constructor is what the lecture's set-up cell did for seed 0, so
    the initialisation (and the pretraining cache key, which includes the seed) is the same everywhere.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return ConvAutoencoder((1, 28, 28), channels=CONV_CHANNELS, embedding_dim=DIMS[-1])


def _mlp(s: Settings, device, seed: int) -> dict:
    return dict(autoencoder="mlp", dims=DIMS, pretrain="end-to-end", pretrain_epochs=s.pretrain_epochs,
                pretrain_lr=LR, batch_size=BATCH_SIZE, device=device, random_state=seed)


def _dec_schedule(s: Settings, device, seed: int) -> dict:
    return dict(update_interval=20, max_iter=s.dec_iter, batch_size=BATCH_SIZE, n_init=10, device=device,
                random_state=seed)


def grid_model(cluster_loss: str, schedule: str = "constant", mode: str = "joint", *, s: Settings = FULL,
               device="auto", seed: int = 0, epochs: int | None = None, **kw) -> DeepClusterer:
    """One run of the grid: the MLP autoencoder, ``LAMDA[cluster_loss]``, final k-means recorded too."""
    return DeepClusterer(K, cluster_loss=cluster_loss, lamda=LAMDA.get(cluster_loss, 0.1), schedule=schedule,
                         schedule_epochs=s.schedule_epochs, step_factor=2.0, mode=mode, final_kmeans=True,
                         epochs=s.grid_epochs if epochs is None else epochs, lr=LR, **_mlp(s, device, seed), **kw)


def dec_model(*, s: Settings = FULL, device="auto", seed: int = 0) -> DEC:
    """DEC on the grid's MLP autoencoder (cached pretraining shared with the grid)."""
    return DEC(K, dims=DIMS, pretrain="end-to-end", pretrain_epochs=s.pretrain_epochs, **_dec_schedule(s, device, seed))


def dbc_model(*, s: Settings = FULL, device="auto", seed: int = 0) -> DBC:
    """DBC: DEC's schedule on the convolutional autoencoder."""
    return DBC(K, autoencoder=conv_autoencoder(seed), pretrain_epochs=s.conv_pretrain_epochs,
               **_dec_schedule(s, device, seed))


def taxonomy_model(*, s: Settings = FULL, device="auto", seed: int = 0) -> DeepClusterer:
    """The taxonomy paper's method on the same convolutional autoencoder as DBC (its pretraining is cached)."""
    return taxonomy_method(K, autoencoder=conv_autoencoder(seed), pretrain_epochs=s.conv_pretrain_epochs,
                           epochs=s.taxonomy_epochs, batch_size=BATCH_SIZE, device=device, random_state=seed)


@dataclass(frozen=True)
class Experiment:
    """One row of the lecture's tables: what is varied, and how to build its estimator."""

    name: str
    cluster_loss: str
    schedule: str
    mode: str
    architecture: str

    def build(self, s: Settings, device, seed: int):
        if self.name == "AE + k-means (start)":
            return grid_model("hardening", s=s, device=device, seed=seed, epochs=0)
        if self.name.startswith("DEC"):
            return dec_model(s=s, device=device, seed=seed)
        if self.name.startswith("DBC"):
            return dbc_model(s=s, device=device, seed=seed)
        if self.name.startswith("taxonomy"):
            return taxonomy_model(s=s, device=device, seed=seed)
        return grid_model(self.cluster_loss, self.schedule, self.mode, s=s, device=device, seed=seed)


def experiments() -> list[Experiment]:
    """The start, the grid (MLP, ``GRID``), DEC (MLP), DBC (conv) and the taxonomy method (conv)."""
    rows = [Experiment("AE + k-means (start)", "none", "none", "none", "mlp")]
    rows += [Experiment(f"{loss} / {schedule} / {mode}", loss, schedule, mode, "mlp") for loss, schedule, mode in GRID]
    rows += [
        Experiment("DEC (MLP autoencoder)", "hardening", "pretrain_then_clustering_only", "dec", "mlp"),
        Experiment("DBC (conv autoencoder)", "hardening", "pretrain_then_clustering_only", "dec", "conv"),
        Experiment("taxonomy method (conv)", "hardening", "constant", "joint", "conv"),
    ]
    return rows


def run_experiment(
    exp: Experiment, X: torch.Tensor, y: np.ndarray, s: Settings, device, seed: int
) -> tuple[dict, object]:
    """Fit one experiment; return its CSV row (both read-outs) and the fitted model.

    ``*_own`` is the method's own assignment (nearest centroid / argmax q / largest group / the head),
    ``*_kmeans`` is k-means (10 restarts) re-run on the final embedding; ``seconds`` is the fit time
    without the pretraining, which ``pretrain_seconds`` records (about 0 when it came from the cache).
    """
    t0 = time.perf_counter()
    model = exp.build(s, device, seed).fit(X, y)
    seconds = time.perf_counter() - t0 - model.pretrain_seconds_
    own_labels = getattr(model, "assignment_labels_", model.labels_)
    if isinstance(model, DeepClusterer) and model.final_kmeans:
        kmeans_labels = model.labels_
    else:  # DEC/DBC read argmax q; re-run k-means on their final embedding for the second read-out
        kmeans_labels = fit_kmeans(model.transform(X), K, 10, seed).labels_
    own, km = evaluate(y, own_labels), evaluate(y, kmeans_labels)
    arch_epochs = s.conv_pretrain_epochs if exp.architecture == "conv" else s.pretrain_epochs
    epochs = (0 if exp.name.startswith("AE") else s.dec_iter if exp.mode == "dec"
              else s.taxonomy_epochs if exp.name.startswith("taxonomy") else s.grid_epochs)
    row = {
        "experiment": exp.name, "cluster_loss": exp.cluster_loss, "schedule": exp.schedule, "mode": exp.mode,
        "architecture": exp.architecture, "seed": seed,
        **{f"{m}_own": own[m] for m in ("acc", "nmi", "ari")},
        **{f"{m}_kmeans": km[m] for m in ("acc", "nmi", "ari")},
        "acc_start": evaluate(y, model.initial_labels_)["acc"],
        "smallest_cluster": int(np.bincount(np.asarray(own_labels), minlength=K).min()),
        "epochs": epochs, "pretrain_epochs": arch_epochs, "pretrain_seconds": model.pretrain_seconds_,
        "pretrain_from_cache": bool(model.pretrain_from_cache_), "seconds": seconds, "n_samples": len(X),
        "device": str(model.device_),
    }
    return row, model


def summarise(df, metrics=("acc_own", "acc_kmeans", "nmi_kmeans", "ari_kmeans", "seconds")):
    """Mean ± std over seeds per experiment (and per conv pretraining budget), in the experiments' order."""
    import pandas as pd

    keys = ["experiment", "architecture", "pretrain_epochs"]
    order = {e.name: i for i, e in enumerate(experiments())}
    g = df.groupby(keys, sort=False)
    out = pd.DataFrame({"seeds": g["seed"].nunique()})
    for m in metrics:
        out[f"{m} mean"] = g[m].mean()
        out[f"{m} std"] = g[m].std(ddof=1).fillna(0.0)
    out = out.reset_index()
    out["_order"] = out["experiment"].map(order).fillna(len(order))
    return out.sort_values(["_order", "pretrain_epochs"]).drop(columns="_order").set_index(keys)
