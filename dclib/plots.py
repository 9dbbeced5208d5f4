"""The course's standard pictures: embeddings, matched confusion heatmaps, samples per cluster,
training curves and comparison charts. Each returns the matplotlib Axes/Figure it drew on.

Lesson: ``notebooks/01_baselines_autoencoders.ipynb`` shows each one; the side-by-side versions
(several methods in one figure) and the accuracy-vs-time scatter belong to ``09_comparison``.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from .metrics import best_mapping, cluster_acc, matched_confusion_matrix

__all__ = [
    "embed_2d",
    "plot_embedding",
    "plot_confusion",
    "plot_cluster_samples",
    "plot_history",
    "plot_comparison",
    "method_colors",
    "plot_accuracy_vs_time",
    "plot_confusions",
    "plot_embeddings",
    "plot_cluster_samples_by_method",
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
                         title: str | None = None, fig=None):
    """A grid with one row of random samples per cluster: what did each cluster learn?

    ``fig`` (a Figure or SubFigure) draws into an existing figure, so several methods can sit side
    by side (``plot_cluster_samples_by_method``, lesson 09); by default a new figure is made.
    """
    X, labels = _np(X), _np(labels)
    clusters = np.unique(labels)
    shape = image_shape or (X.shape[-2:] if X.ndim == 4 else (int(np.sqrt(X[0].size)),) * 2)
    rng = np.random.default_rng(random_state)
    if fig is None:
        fig = plt.figure(figsize=(n_per_cluster * 0.6, len(clusters) * 0.65))
    axes = fig.subplots(len(clusters), n_per_cluster, squeeze=False)
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


# ----------------------------------------------------------------------------- several methods side by side
# Lesson: notebooks/09_comparison.ipynb ("which method, when, and at what cost?").

# Every method keeps one colour in every figure of the comparison, whatever subset is drawn.
_METHOD_ORDER = ("kmeans", "kmeans-pca", "ae-kmeans", "dec", "idec", "dcn", "vade", "iic")


def method_colors(names) -> dict[str, tuple]:
    """A fixed colour per method name (the course's methods first, others after), for lesson 09."""
    names = list(dict.fromkeys(names))
    extra = [n for n in names if n not in _METHOD_ORDER]
    palette = sns.color_palette("tab10", 10) + sns.color_palette("husl", max(1, len(extra)))
    order = list(_METHOD_ORDER) + extra
    return {n: palette[order.index(n) % len(palette)] for n in names}


def _check_methods_mapping(mapping, what: str) -> dict:
    if not isinstance(mapping, Mapping) or len(mapping) == 0:
        raise ValueError(f"{what} must be a non-empty mapping {{method name: array}}, got {type(mapping).__name__}.")
    return dict(mapping)


def _grid(n: int, ncols: int, size: tuple[float, float]):
    """A figure with ``n`` axes in rows of ``ncols``; unused cells are removed so len(fig.axes) == n."""
    if int(ncols) < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}.")
    ncols = min(int(ncols), n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        fig.delaxes(ax)
    return fig, flat[:n]


def plot_accuracy_vs_time(summary: pd.DataFrame, *, metric: str = "acc", ax=None, label: str | None = None,
                          marker: str = "o", logx: bool = True, annotate: bool = True, title: str | None = None):
    """One point per method: mean ``metric`` against mean seconds per fit, error bars = std over seeds.

    The cost axis of "which method, when, and at what cost?" (lesson 09). ``summary`` is
    ``dclib.compare.summarise``'s table (``method``, ``{metric}_mean``, ``seconds_mean`` and, if
    present, the ``_std`` columns). Call it twice on the same ``ax`` with another ``marker`` and
    ``label`` to overlay a second device; the points are one ``PathCollection`` whose offsets are
    the (seconds, metric) means, in the order of the table.
    """
    if not isinstance(summary, pd.DataFrame) or summary.empty:
        raise ValueError("summary must be a non-empty DataFrame from dclib.compare.summarise (one row per method).")
    needed = ["method", f"{metric}_mean", "seconds_mean"]
    missing = [c for c in needed if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks the columns {missing}; pass dclib.compare.summarise(runs), "
                         f"not the per-run table (metric={metric!r}).")
    x = summary["seconds_mean"].to_numpy(dtype=float)
    y = summary[f"{metric}_mean"].to_numpy(dtype=float)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("summary has NaN or infinite means; drop the methods that did not run.")
    if logx and (x <= 0).any():
        raise ValueError("seconds_mean must be positive for a log time axis; pass logx=False.")
    xerr = summary.get("seconds_std", pd.Series(0.0, index=summary.index)).fillna(0).to_numpy(dtype=float)
    yerr = summary.get(f"{metric}_std", pd.Series(0.0, index=summary.index)).fillna(0).to_numpy(dtype=float)
    names = summary["method"].astype(str).tolist()
    colors = method_colors(names)
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.6", elinewidth=1, capsize=3, zorder=2)
    ax.scatter(x, y, c=[colors[n] for n in names], marker=marker, s=45, edgecolors="k", linewidths=0.5,
               label=label, zorder=3)
    if annotate:
        for xi, yi, name in zip(x, y, names, strict=True):
            ax.annotate(name, (xi, yi), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set(xlabel="seconds per fit (mean over seeds)", ylabel=f"{metric.upper()} (mean ± std)",
           title=title or f"{metric.upper()} vs time")
    if logx:
        ax.set_xscale("log")
    if label is not None:
        ax.legend(frameon=False, fontsize=8)
    return ax


def plot_confusions(y_true, labels_by_method: Mapping, *, ncols: int = 3, normalize: bool = False,
                    size: tuple[float, float] = (4.2, 3.6)):
    """Matched confusion matrices of several methods side by side (lesson 09), one ``plot_confusion`` each.

    Shows *which* digits each method confuses, which one number (ACC) hides. Returns the Figure,
    with exactly one Axes per method.
    """
    labels_by_method = _check_methods_mapping(labels_by_method, "labels_by_method")
    y = _np(y_true)
    for name, labels in labels_by_method.items():
        if len(_np(labels)) != len(y):
            raise ValueError(f"labels of {name!r} have {len(_np(labels))} entries but y_true has {len(y)}.")
    fig, axes = _grid(len(labels_by_method), ncols, size)
    for ax, (name, labels) in zip(axes, labels_by_method.items(), strict=True):
        plot_confusion(y, labels, ax=ax, normalize=normalize, title=f"{name}: ACC {cluster_acc(y, _np(labels)):.3f}")
    fig.tight_layout()
    return fig


def plot_embeddings(Z_by_method: Mapping, labels, *, method: str = "tsne", n_max: int = 2000, ncols: int = 3,
                    random_state: int = 0, size: tuple[float, float] = (4.0, 4.0)):
    """2-D pictures (``embed_2d``) of several methods' embeddings side by side (lesson 09).

    ``labels`` colours the points: one array for every method (the true classes, to compare the
    spaces) or a mapping {method: labels} (each method's clusters). The same random subset of
    points is drawn in every panel. Returns the Figure, one Axes per method.
    """
    Z_by_method = _check_methods_mapping(Z_by_method, "Z_by_method")
    per_method = isinstance(labels, Mapping)
    for name, Z in Z_by_method.items():
        if per_method and name not in labels:
            raise ValueError(f"labels has no entry for method {name!r}.")
        lab = _np(labels[name] if per_method else labels)
        if len(Z) != len(lab):
            raise ValueError(f"embedding of {name!r} has {len(Z)} rows but its labels have {len(lab)}.")
    fig, axes = _grid(len(Z_by_method), ncols, size)
    for ax, (name, Z) in zip(axes, Z_by_method.items(), strict=True):
        lab = labels[name] if per_method else labels
        plot_embedding(Z, lab, method=method, ax=ax, n_max=n_max, random_state=random_state, title=name)
    fig.tight_layout()
    return fig


def plot_cluster_samples_by_method(X, labels_by_method: Mapping, *, y_true=None, n_per_cluster: int = 6,
                                   image_shape=None, random_state: int = 0):
    """Samples per cluster (``plot_cluster_samples``) for several methods side by side (lesson 09).

    With ``y_true`` each method's clusters are renamed to their Hungarian-matched class, so row
    ``r`` shows the cluster matched to class ``r`` in every panel (unmatched clusters come last).
    Returns the Figure; ``fig.subfigs`` holds one SubFigure per method.
    """
    labels_by_method = _check_methods_mapping(labels_by_method, "labels_by_method")
    X = _np(X)
    if X.ndim < 2:
        raise ValueError(f"X must hold one sample per row, got shape {X.shape}.")
    renamed = {}
    for name, labels in labels_by_method.items():
        labels = _np(labels)
        if len(labels) != len(X):
            raise ValueError(f"labels of {name!r} have {len(labels)} entries but X has {len(X)} samples.")
        if y_true is not None:
            mapping = best_mapping(_np(y_true), labels)
            unmatched = sorted(set(np.unique(labels).tolist()) - set(mapping))
            top = max(mapping.values(), default=-1) + 1
            mapping.update({c: top + i for i, c in enumerate(unmatched)})
            labels = np.vectorize(mapping.__getitem__)(labels)
        renamed[name] = labels
    n_rows = max(len(np.unique(lab)) for lab in renamed.values())
    fig = plt.figure(figsize=(len(renamed) * (n_per_cluster * 0.55 + 0.5), n_rows * 0.6 + 0.6))
    subfigs = fig.subfigures(1, len(renamed), squeeze=False)[0]
    for sub, (name, labels) in zip(subfigs, renamed.items(), strict=True):
        plot_cluster_samples(X, labels, n_per_cluster=n_per_cluster, image_shape=image_shape,
                             random_state=random_state, title=name, fig=sub)
    return fig
