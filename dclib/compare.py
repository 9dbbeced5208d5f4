"""Run several methods on the same data, seeds and budget, and summarise ACC/NMI/ARI and time.

Used by ``python -m dclib compare``, ``make demo``, the benchmarks and the comparison notebook.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .data import Dataset, load_dataset
from .metrics import evaluate
from .utils import get_device, timed_fit

__all__ = ["METHODS", "make_estimator", "compare", "charged_pretraining_seconds", "summarise", "format_table",
           "with_pretraining_costs", "save_results"]

# name -> factory(n_clusters, random_state, device, fast) -> estimator.
# "fast" shrinks epochs only (CI and quick looks); the code path is the same.
Factory = Callable[[int, int, str, bool], object]


def _kmeans(k, seed, device, fast):
    from .methods import KMeansBaseline

    return KMeansBaseline(k, features="raw", n_init=3 if fast else 10, random_state=seed)


def _kmeans_pca(k, seed, device, fast):
    from .methods import KMeansBaseline

    return KMeansBaseline(k, features="pca", n_init=3 if fast else 10, random_state=seed)


# The course configuration: AE + k-means, DEC, IDEC and DCN start from the same autoencoder
# (end-to-end pretraining, 25 epochs, batch 256, the seed), so with the disk cache ``make demo``
# pretrains it once per seed. 25 epochs because on mnist5k 20 epochs lose ~0.07 ACC for DEC while
# 50 gain ~0.02 at twice the time (benchmarks/RESULTS.md).
PRETRAIN = dict(pretrain="end-to-end", pretrain_epochs=25)
FAST_PRETRAIN = dict(pretrain="end-to-end", pretrain_epochs=2)


def _ae_kmeans(k, seed, device, fast):
    from .methods import AEKMeans

    return AEKMeans(k, **(FAST_PRETRAIN if fast else PRETRAIN), device=device, random_state=seed)


def _dec(k, seed, device, fast):
    from .methods import DEC

    return DEC(k, **(FAST_PRETRAIN if fast else PRETRAIN), update_interval=20, max_iter=40 if fast else 300,
               device=device, random_state=seed)


def _idec(k, seed, device, fast):
    from .methods import IDEC

    return IDEC(k, **(FAST_PRETRAIN if fast else PRETRAIN), update_interval=20, max_iter=40 if fast else 300,
                device=device, random_state=seed)


def _dcn(k, seed, device, fast):
    from .methods import DCN

    return DCN(k, **(FAST_PRETRAIN if fast else PRETRAIN), epochs=2 if fast else 20, device=device,
               random_state=seed)


def _vade(k, seed, device, fast):
    from .methods import VaDE

    return VaDE(k, pretrain_epochs=2 if fast else 25, epochs=2 if fast else 20, device=device, random_state=seed)


def _iic(k, seed, device, fast):
    from .methods import IIC

    # The paper trains a 64-128-256 net with lr 1e-4 and batch 700 for hundreds of epochs. The course
    # keeps the lr 1e-3 / batch 256 that trains in a few epochs on the CPU (a 16-32-64 net, 15 epochs);
    # on a GPU it affords the paper's net and 30 epochs.
    if get_device(device).type == "cuda":
        return IIC(k, epochs=2 if fast else 30, batch_size=256, lr=1e-3, device=device, random_state=seed)
    return IIC(k, epochs=1 if fast else 15, batch_size=256, lr=1e-3, channels=(16, 32, 64), device=device,
               random_state=seed)


def _on_gpu(device) -> bool:
    return get_device(device).type == "cuda"


# The methods added in session 3 (lectures 07-08). Their CPU budgets are the short ones the lessons
# use (a few minutes per fit on mnist5k); on a GPU they get the papers' epochs.
def _dbc(k, seed, device, fast):
    from .methods import DBC

    return DBC(k, pretrain_epochs=2 if fast else (50 if _on_gpu(device) else 10), max_iter=40 if fast else 2000,
               device=device, random_state=seed)


def _taxonomy(k, seed, device, fast):
    from .methods import taxonomy_method

    gpu = _on_gpu(device)
    return taxonomy_method(k, pretrain_epochs=2 if fast else (50 if gpu else 10),
                           epochs=1 if fast else (20 if gpu else 6), device=device, random_state=seed)


def _imsat(k, seed, device, fast):
    from .methods import IMSAT

    return IMSAT(k, epochs=1 if fast else (50 if _on_gpu(device) else 10), device=device, random_state=seed)


def _dac(k, seed, device, fast):
    from .methods import DAC

    if _on_gpu(device):
        return DAC(k, epochs=2 if fast else 50, device=device, random_state=seed)
    return DAC(k, epochs=1 if fast else 8, eta=0.05, channels=(16, 32, 32), device=device, random_state=seed)


def _depict(k, seed, device, fast):
    from .methods import DEPICT

    gpu = _on_gpu(device)
    return DEPICT(k, pretrain_epochs=2 if fast else (50 if gpu else 10),
                  layerwise_epochs=1 if fast else (10 if gpu else 5), epochs=1 if fast else (30 if gpu else 3),
                  device=device, random_state=seed)


# Lecture 10. On a CPU the lesson's 3 epochs for CatGAN and 10 for InfoGAN (about a minute each on mnist5k:
# InfoGAN's code lines up with the digits only after ~10 epochs, 0.35 -> 0.40 ACC, RESULTS.md session 6);
# on a GPU 20 epochs (the H200 runs of benchmarks/RESULTS.md, session 4, used 5-12 and were still improving).
def _infogan(k, seed, device, fast):
    from .methods import InfoGAN

    return InfoGAN(k, epochs=1 if fast else (20 if _on_gpu(device) else 10), device=device, random_state=seed)


def _catgan(k, seed, device, fast):
    from .methods import CatGAN

    return CatGAN(k, epochs=1 if fast else (20 if _on_gpu(device) else 3), device=device, random_state=seed)


# Lecture 11. DEN and the embedding method start from the course's autoencoder (the shared cache);
# JULE runs its merge-and-learn periods with the library defaults (no pretraining).
def _den(k, seed, device, fast):
    from .methods import DEN

    return DEN(k, **(FAST_PRETRAIN if fast else PRETRAIN), epochs=2 if fast else 20, device=device, random_state=seed)


def _embedding(k, seed, device, fast):
    from .methods import EmbeddingClustering

    # perplexity 30: the codes' fixed-bandwidth affinities are nearly flat (a median of ~230 effective
    # neighbours in a batch of 500); calibrated, ACC 0.398 ± 0.033 -> 0.497 ± 0.013, and 0.582 ± 0.030 since the
    # autoencoder pretrains at batch 256 like the others, not at the pair batch 500 (mnist5k, 3 seeds; RESULTS.md)
    return EmbeddingClustering(k, **(FAST_PRETRAIN if fast else PRETRAIN), epochs=2 if fast else 30, perplexity=30.0,
                               device=device, random_state=seed)


def _jule(k, seed, device, fast):
    from .methods import JULE

    return JULE(k, device=device, random_state=seed)


METHODS: dict[str, Factory] = {
    "kmeans": _kmeans,
    "kmeans-pca": _kmeans_pca,
    "ae-kmeans": _ae_kmeans,
    "dec": _dec,
    "idec": _idec,
    "dcn": _dcn,
    "vade": _vade,
    "iic": _iic,
    "dbc": _dbc,
    "taxonomy": _taxonomy,
    "imsat": _imsat,
    "dac": _dac,
    "depict": _depict,
    "infogan": _infogan,
    "catgan": _catgan,
    "den": _den,
    "embedding": _embedding,
    "jule": _jule,
}


def make_estimator(name: str, n_clusters: int, random_state: int, device: str = "auto", fast: bool = False):
    """The course's standard configuration of method ``name``."""
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; choose from {sorted(METHODS)} or 'all'.")
    return METHODS[name](n_clusters, random_state, device, fast)


def _parse_methods(methods: str | list[str]) -> list[str]:
    names = list(METHODS) if methods == "all" else (methods.split(",") if isinstance(methods, str) else methods)
    names = [n.strip() for n in names if n.strip()]
    for name in names:
        if name not in METHODS:
            raise ValueError(f"Unknown method {name!r}; choose from {sorted(METHODS)} or 'all'.")
    return names


def compare(
    data: str | Dataset = "mnist5k",
    methods: str | list[str] = "all",
    seeds: int | list[int] = 3,
    device: str = "auto",
    fast: bool = False,
    root: str | None = None,
    n_samples: int | None = None,
    verbose: bool = True,
    reuse_pretraining: bool = True,
    models: dict | None = None,
) -> pd.DataFrame:
    """Fit each method once per seed; one row per (method, seed) with ACC/NMI/ARI and seconds.

    With ``reuse_pretraining=True`` (``make demo``) methods that pretrain the same autoencoder
    with the same seed share it through the disk cache, so their ``seconds`` (the wall time of
    ``fit``) exclude pretraining after the first; ``seconds_with_pretraining`` adds back what the
    cached autoencoder cost to make (``pretrain_cost_seconds_``; NaN if the cache predates that
    record), so costs compare fairly. The benchmarks pass ``False``: every fit pretrains in full.
    Pass a dict as ``models`` to keep the fitted estimators, keyed ``(method, seed)``, so that a
    lesson can look inside them without fitting them a second time.
    """
    dev = get_device(device)
    ds = data if isinstance(data, Dataset) else load_dataset(data, root=root)
    if n_samples is not None:
        ds = ds.subset(n_samples)
    ds = ds.to(dev)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    rows = []
    for name in _parse_methods(methods):
        for seed in seed_list:
            model = make_estimator(name, ds.n_clusters, seed, str(dev), fast)
            if not reuse_pretraining and "cache" in model.get_params():
                model.set_params(cache=False)
            seconds = timed_fit(model, ds.X, dev)
            scores = evaluate(ds.y, model.labels_)
            if models is not None:
                models[(name, seed)] = model
            rows.append({"method": name, "data": ds.name, "n": len(ds), "seed": seed,
                         "device": dev.type, "seconds": seconds, **scores,
                         "pretrain_from_cache": bool(getattr(model, "pretrain_from_cache_", False)),
                         "seconds_with_pretraining": seconds + charged_pretraining_seconds(model)})
            if verbose:
                print(f"  {name:<12} seed={seed} acc={scores['acc']:.3f} nmi={scores['nmi']:.3f} "
                      f"ari={scores['ari']:.3f} {seconds:6.1f}s", flush=True)
    return pd.DataFrame(rows)


def charged_pretraining_seconds(model) -> float:
    """What a fitted model owes for an autoencoder it loaded from the cache: 0 if it pretrained
    inside ``fit`` (or has no autoencoder), the cached weights' saved cost otherwise, NaN if the
    cache predates that record. One rule for ``compare`` and ``benchmarks/gpu.py``."""
    if not getattr(model, "pretrain_from_cache_", False):
        return 0.0
    cost = getattr(model, "pretrain_cost_seconds_", None)
    return float("nan") if cost is None else float(cost)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds, one row per method (in the order run)."""
    grouped = runs.groupby("method", sort=False)
    columns = ["acc", "nmi", "ari", "seconds"] + (["seconds_with_pretraining"] if "seconds_with_pretraining" in runs
                                                    else [])
    summary = grouped[columns].agg(["mean", "std"])
    summary.columns = [f"{a}_{b}" for a, b in summary.columns]
    stds = [c for c in summary.columns if c.endswith("_std")]  # one seed: std 0, not NaN
    summary[stds] = summary[stds].fillna(0.0)
    summary = summary.reset_index()
    summary.insert(1, "data", grouped["data"].first().values)
    summary.insert(2, "device", grouped["device"].first().values)
    summary.insert(3, "seeds", grouped["seed"].count().values)
    return summary


def format_table(summary: pd.DataFrame) -> str:
    """A plain-text table: method, data, device, ACC/NMI/ARI mean ± std, seconds.

    With ``seconds_with_pretraining`` in the summary, a last column adds the cost of a cached
    autoencoder to the methods that reused it (``compare``'s docstring).
    """
    full = "seconds_with_pretraining_mean" in summary
    header = ["method".ljust(12), "data".ljust(11), "device".ljust(6), "seeds".rjust(5)]
    header += [name.rjust(13) for name in ("ACC", "NMI", "ARI", "seconds")]
    lines = [" ".join(header) + ("  s with pretraining" if full else "")]
    for _, r in summary.iterrows():
        cells = [f"{r[f'{m}_mean']:.3f} ± {r[f'{m}_std']:.3f}" for m in ("acc", "nmi", "ari")]
        line = (f"{r['method']:<12} {r['data']:<11} {r['device']:<6} {int(r['seeds']):>5} "
                f"{cells[0]:>13} {cells[1]:>13} {cells[2]:>13} "
                f"{r['seconds_mean']:>6.1f} ± {r['seconds_std']:<4.1f}")
        if full and np.isfinite(r["seconds_with_pretraining_mean"]):
            line += f"  {r['seconds_with_pretraining_mean']:>8.1f} ± {r['seconds_with_pretraining_std']:<5.1f}"
        elif full:
            line += "  unknown (cache predates the record)"
        lines.append(line)
    return "\n".join(lines)


def with_pretraining_costs(summary: pd.DataFrame) -> pd.DataFrame:
    """A copy whose ``seconds_mean``/``_std`` include the cached pretraining (where it is known).

    For plots of accuracy against cost: a method that reused another's autoencoder is charged what
    that autoencoder cost, so sharing a cache does not make a method look cheap.
    """
    out = summary.copy()
    if "seconds_with_pretraining_mean" in out:
        known = np.isfinite(out["seconds_with_pretraining_mean"])
        for stat in ("mean", "std"):
            out.loc[known, f"seconds_{stat}"] = out.loc[known, f"seconds_with_pretraining_{stat}"]
    return out


def save_results(runs: pd.DataFrame, out_dir: str | Path = "results", tag: str = "compare") -> dict[str, Path]:
    """Write the per-run CSV, the summary CSV, the comparison figure and the accuracy-vs-time scatter."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .plots import plot_accuracy_vs_time, plot_comparison

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(runs)
    costs = with_pretraining_costs(summary)
    paths = {"runs": out / f"{tag}_runs.csv", "summary": out / f"{tag}_summary.csv", "figure": out / f"{tag}.png",
             "scatter": out / f"{tag}_acc_vs_time.png"}
    runs.to_csv(paths["runs"], index=False)
    summary.to_csv(paths["summary"], index=False)
    axes = plot_comparison(costs)
    axes[0].figure.savefig(paths["figure"], dpi=120, bbox_inches="tight")
    plt.close(axes[0].figure)
    ax = plot_accuracy_vs_time(costs, title=f"ACC vs time, pretraining included ({summary['data'].iloc[0]}, "
                                            f"{summary['device'].iloc[0]})")
    ax.figure.savefig(paths["scatter"], dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
    return paths
