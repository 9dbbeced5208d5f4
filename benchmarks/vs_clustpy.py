"""Side by side with the reference library: ClustPy 0.0.3's DEC, IDEC, DCN and VaDE against ours.

    uv sync --group bench          # installs clustpy==0.0.3 next to the course (never in the core install)
    uv run python benchmarks/vs_clustpy.py --data mnist5k --methods dec,idec,vade --seeds 3
    uv run python benchmarks/vs_clustpy.py --clustpy-seeds 1     # ClustPy once (it is the slow side)
    uv run python benchmarks/vs_clustpy.py --methods idec,dcn --seeds 0 --clustpy-seeds 2 --first-seed 1

Both libraries get the same data (flattened, in [0, 1]), the same device and the same thread count,
in one process, one fit after the other (never in parallel). Ours runs twice: "matched" uses
ClustPy's budget (``--pretrain-epochs`` + ``--epochs`` epochs, batch 256, the 784-500-500-2000-10
autoencoder) and "course" is the course's standard configuration from ``dclib.compare`` (the one
``make demo`` runs). No pretraining cache is used: every fit pretrains, so every time is a full fit.
Prints one table; write it into benchmarks/RESULTS.md with the date and the command.

Which labels: ClustPy's ``labels_`` are *not* its method's own assignments. After training, its DEC,
IDEC and DCN re-run k-means on the final embedding (``KMeans(k, random_state)``) and its VaDE refits a
full-covariance Gaussian mixture started at its VaDE means; the method's own assignments are in
``dec_labels_`` / ``dcn_labels_`` / ``vade_labels_``. So the table has both: "clustpy" (its ``labels_``,
re-clustered) and "clustpy-own" (its own assignments), and for ours "ours-course" (our ``labels_``:
argmax q, nearest centre, argmax γ) and "ours-course+re" (the same fitted model followed by ClustPy's
re-clustering step, timed with it). Like is compared with like: "-own" with ours, "+re" with "clustpy".
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def clustpy_estimator(name: str, k: int, seed: int, pretrain_epochs: int, epochs: int, device: str):
    try:
        from clustpy import deep
    except ImportError as err:  # pragma: no cover - depends on the optional group
        raise SystemExit("ClustPy is not installed: run `uv sync --group bench` first.") from err
    classes = {"dec": deep.DEC, "idec": deep.IDEC, "dcn": deep.DCN, "vade": deep.VaDE}
    return classes[name](k, pretrain_epochs=pretrain_epochs, clustering_epochs=epochs, batch_size=256,
                         random_state=seed, device=device)


def ours_matched(name: str, k: int, seed: int, n: int, pretrain_epochs: int, epochs: int, device: str):
    """Our estimator with ClustPy's budget: same epochs, batch and architecture, no cache."""
    import dclib

    iters = epochs * math.ceil(n / 256)
    common = dict(pretrain_epochs=pretrain_epochs, batch_size=256, cache=False, device=device, random_state=seed)
    if name == "dec":
        return dclib.DEC(k, pretrain="end-to-end", update_interval=20, max_iter=iters, **common)
    if name == "idec":
        return dclib.IDEC(k, pretrain="end-to-end", update_interval=20, max_iter=iters, **common)
    if name == "vade":
        return dclib.VaDE(k, epochs=epochs, **common)
    if name == "dcn":
        return dclib.DCN(k, epochs=epochs, **common)
    raise ValueError(name)


def course_estimator(name: str, k: int, seed: int, device: str):
    """The course's standard configuration (``make demo``), without the pretraining cache."""
    from dclib.compare import make_estimator

    return make_estimator(name, k, seed, device).set_params(cache=False)


# ClustPy's own (pre-re-clustering) assignments, per method.
CLUSTPY_OWN = {"dec": "dec_labels_", "idec": "dec_labels_", "dcn": "dcn_labels_", "vade": "vade_labels_"}


def recluster(name: str, model, X, k: int, seed: int) -> np.ndarray:
    """ClustPy's final step applied to our fitted model: k-means on the embedding (DEC, IDEC, DCN), or a
    full-covariance Gaussian mixture started at the learned means (VaDE)."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    Z = np.asarray(model.transform(X), dtype=np.float64)
    if name == "vade":
        gmm = GaussianMixture(k, covariance_type="full", n_init=1, random_state=seed,
                              means_init=np.asarray(model.cluster_centers_, dtype=np.float64))
        return gmm.fit_predict(Z)
    return KMeans(k, random_state=seed).fit_predict(Z)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--root", default=None)
    parser.add_argument("--methods", default="dec,idec,vade")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for our two configurations")
    parser.add_argument("--clustpy-seeds", type=int, default=None, help="seeds for ClustPy (default: --seeds)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds run from here (e.g. 1 with --seeds 2 adds seeds 1-2 to an earlier seed-0 run)")
    parser.add_argument("--pretrain-epochs", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-matched", action="store_true", help="skip ours with ClustPy's budget")
    parser.add_argument("--no-course", action="store_true", help="skip ours in the course configuration")
    parser.add_argument("--out", default=None, help="append one CSV row per fit here")
    args = parser.parse_args()

    import pandas as pd
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from dclib import evaluate, load_dataset
    from dclib.utils import timed_fit  # the one synchronised timer of the course and its benchmarks

    ds = load_dataset(args.data, root=args.root)
    X_np = ds.X.reshape(len(ds.X), -1).numpy().astype(np.float32)
    y = ds.y
    device = args.device
    print(f"# {date.today()} | {ds.name} n={len(y)} | device {device} ({platform.processor() or 'cpu'}, "
          f"{torch.get_num_threads()} threads) | torch {torch.__version__} | budget {args.pretrain_epochs} + "
          f"{args.epochs} epochs", flush=True)
    rows = []
    for name in args.methods.split(","):
        for index in range(max(args.seeds, args.clustpy_seeds or 0)):
            seed = args.first_seed + index
            n_clustpy = args.clustpy_seeds if args.clustpy_seeds is not None else args.seeds
            runs = []  # (library, factory, data): built only when run, so one model lives at a time
            if index < n_clustpy:
                runs.append(("clustpy", partial(clustpy_estimator, name, ds.n_clusters, seed, args.pretrain_epochs,
                                                args.epochs, device), X_np))
            if index < args.seeds:
                if not args.no_matched:
                    runs.append(("ours-matched", partial(ours_matched, name, ds.n_clusters, seed, len(y),
                                                         args.pretrain_epochs, args.epochs, device), ds.X))
                if not args.no_course:
                    runs.append(("ours-course", partial(course_estimator, name, ds.n_clusters, seed, device), ds.X))
            for who, build, X in runs:
                model = build()
                seconds = timed_fit(model, X, device)
                results = [(who, seconds, model.labels_)]
                if who == "clustpy":
                    results.append(("clustpy-own", seconds, getattr(model, CLUSTPY_OWN[name])))
                else:
                    start = time.perf_counter()
                    labels = recluster(name, model, X, ds.n_clusters, seed)
                    results.append((who + "+re", seconds + time.perf_counter() - start, labels))
                for library, secs, labels in results:
                    scores = evaluate(y, np.asarray(labels))
                    row = {"method": name, "library": library, "seed": seed, "seconds": round(secs, 2),
                           "threads": torch.get_num_threads(), **{k: round(v, 4) for k, v in scores.items()}}
                    rows.append(row)
                    if args.out:
                        out = Path(args.out)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        pd.DataFrame([row]).to_csv(out, mode="a", header=not out.exists(), index=False)
                    print(f"  {name:<5} {library:<15} seed={seed} acc={scores['acc']:.3f} nmi={scores['nmi']:.3f} "
                          f"ari={scores['ari']:.3f} {secs:6.1f}s", flush=True)
    table = pd.DataFrame(rows)
    print()
    print(format_table(table))


def format_table(table) -> str:
    """Per method and library: seconds and ACC/NMI/ARI mean ± std, and the time ratio to ClustPy."""
    lines = [f"{'method':<6} {'library':<15} {'seeds':>5} {'seconds':>14} {'× ClustPy':>9} "
             f"{'ACC':>13} {'NMI':>13} {'ARI':>13}"]
    for name, group in table.groupby("method", sort=False):
        ref = group.loc[group.library == "clustpy", "seconds"].mean()
        for who, g in group.groupby("library", sort=False):
            cell = lambda col, g=g: f"{g[col].mean():.3f} ± {(g[col].std() if len(g) > 1 else 0.0):.3f}"
            sec = f"{g.seconds.mean():.1f} ± {(g.seconds.std() if len(g) > 1 else 0.0):.1f}"
            ratio = f"{g.seconds.mean() / ref:.2f}" if ref == ref else "-"
            lines.append(f"{name:<6} {who:<15} {len(g):>5} {sec:>14} {ratio:>9} "
                         f"{cell('acc'):>13} {cell('nmi'):>13} {cell('ari'):>13}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
