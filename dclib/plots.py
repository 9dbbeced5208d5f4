"""The course's standard pictures: embeddings, matched confusion heatmaps, samples per cluster,
training curves and comparison charts. Each returns the matplotlib Axes/Figure it drew on.

Lesson: ``notebooks/01_baselines_autoencoders.ipynb`` shows each one.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from .metrics import cluster_acc, matched_confusion_matrix

__all__ = [
    "embed_2d",
    "plot_embedding",
    "plot_confusion",
    "plot_cluster_samples",
    "plot_history",
    "plot_comparison",
]


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def embed_2d(Z, method: str = "tsne", n_max: int = 3000, random_state: int = 0):
    """2-D coordinates of ``Z`` (t-SNE or PCA) on at most ``n_max`` points; returns (coords, idx)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    Z = _np(Z).reshape(len(Z), -1)
    rng = np.random.default_rng(random_state)
    idx = np.sort(rng.choice(len(Z), size=min(n_max, len(Z)), replace=False))
    Z = Z[idx]
    if Z.shape[1] == 2:
        return Z, idx
    if method == "pca":
        return PCA(2, random_state=random_state).fit_transform(Z), idx
    if method != "tsne":
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}.")
    return TSNE(2, init="pca", random_state=random_state, perplexity=min(30, len(Z) - 1)).fit_transform(Z), idx


def plot_embedding(Z, labels, *, method: str = "tsne", title: str | None = None, ax=None, n_max: int = 3000,
                   random_state: int = 0):
    """Scatter the embedding in 2-D coloured by ``labels`` (true classes or clusters)."""
    coords, idx = embed_2d(Z, method, n_max, random_state)
    labels = _np(labels)[idx]
    ax = ax or plt.subplots(figsize=(5, 5))[1]
    sns.scatterplot(x=coords[:, 0], y=coords[:, 1], hue=labels, palette="tab10" if labels.max() < 10 else "husl",
                    s=6, linewidth=0, legend="full" if len(np.unique(labels)) <= 12 else False, ax=ax)
    ax.set(xticks=[], yticks=[], title=title or f"{method.upper()} of the embedding")
    if ax.get_legend() is not None:
        ax.legend(markerscale=2, fontsize=7, loc="best", frameon=False)
    return ax


def plot_confusion(y_true, y_pred, *, ax=None, title: str | None = None, normalize: bool = False):
    """Heatmap of classes x clusters after the Hungarian matching (matches on the diagonal)."""
    cm, classes, clusters = matched_confusion_matrix(_np(y_true), _np(y_pred))
    if normalize:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax = ax or plt.subplots(figsize=(5.5, 4.5))[1]
    sns.heatmap(cm, annot=len(classes) <= 12 and len(clusters) <= 12, fmt=".2f" if normalize else "d",
                cmap="Blues", xticklabels=clusters, yticklabels=classes, cbar=False, ax=ax)
    acc = cluster_acc(_np(y_true), _np(y_pred))
    ax.set(xlabel="cluster (matched order)", ylabel="true class", title=title or f"ACC = {acc:.3f}")
    return ax


def plot_cluster_samples(X, labels, *, n_per_cluster: int = 10, image_shape=None, random_state: int = 0,
                         title: str | None = None):
    """A grid with one row of random samples per cluster: what did each cluster learn?"""
    X, labels = _np(X), _np(labels)
    clusters = np.unique(labels)
    shape = image_shape or (X.shape[-2:] if X.ndim == 4 else (int(np.sqrt(X[0].size)),) * 2)
    rng = np.random.default_rng(random_state)
    fig, axes = plt.subplots(len(clusters), n_per_cluster, figsize=(n_per_cluster * 0.6, len(clusters) * 0.65),
                             squeeze=False)
    for row, c in enumerate(clusters):
        members = np.flatnonzero(labels == c)
        pick = rng.choice(members, size=min(n_per_cluster, len(members)), replace=False)
        for col in range(n_per_cluster):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(pick):
                ax.imshow(X[pick[col]].reshape(shape), cmap="gray_r")
        axes[row, 0].text(-0.3, 0.5, f"{c} ({len(members)})", transform=axes[row, 0].transAxes,
                          ha="right", va="center", fontsize=7)
    fig.suptitle(title or "samples per cluster (size)", fontsize=10)
    return fig


def plot_history(history, keys=None, *, x: str | None = None, axes=None, title: str | None = None):
    """One small panel per logged quantity (loss, label change, ACC, ...)."""
    keys = keys or [k for k in history if k not in ("epoch", "iteration", "stage")]
    x_values = history[x] if x else None
    if axes is None:
        _, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.6), squeeze=False)
        axes = axes[0]
    for ax, key in zip(axes, keys, strict=False):
        ax.plot(x_values if x_values is not None else range(len(history[key])), history[key], marker=".")
        ax.set(title=key, xlabel=x or "step")
    if title:
        axes[0].figure.suptitle(title)
    axes[0].figure.tight_layout()
    return axes


def plot_comparison(table, *, metric: str = "acc", axes=None):
    """Bar chart of ``metric`` (mean ± std over seeds) and a metric-vs-seconds scatter.

    ``table`` is the DataFrame ``dclib.compare.compare`` returns (one row per method).
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    ax_bar, ax_time = axes
    ax_bar.bar(table["method"], table[f"{metric}_mean"], yerr=table[f"{metric}_std"], capsize=4,
               color=sns.color_palette("tab10", len(table)))
    ax_bar.set(ylabel=metric.upper(), ylim=(0, 1), title=f"{metric.upper()} (mean ± std over seeds)")
    ax_bar.tick_params(axis="x", rotation=30)
    for _, row in table.iterrows():
        ax_time.errorbar(row["seconds_mean"], row[f"{metric}_mean"], yerr=row[f"{metric}_std"], fmt="o",
                         capsize=3, label=row["method"])
    ax_time.set(xlabel="seconds per fit", ylabel=metric.upper(), xscale="log", title="accuracy vs time")
    ax_time.legend(fontsize=7, frameon=False)
    axes[0].figure.tight_layout()
    return axes
