"""DCN's weight λ over seeds: the paper's value against larger ones, from the course's cached autoencoder (issue #7).

    python benchmarks/dcn_lamda.py --lamdas 0,paper,0.01,1 --seeds 6 --threads 2 \
        --out benchmarks/measured/dcn_lamda_cpu_2026-11-26.csv
    python benchmarks/dcn_lamda.py --data digits --lamdas paper,1 --seeds 3 --threads 2 \
        --out benchmarks/measured/dcn_lamda_digits_cpu_2026-11-26.csv   # data no setting was tuned on
    python benchmarks/dcn_lamda.py --lamdas paper,1 --seeds 1 --fast     # tiny settings, same code path

Every run is ``dclib.compare``'s DCN (the course configuration: 25 epochs of end-to-end pretraining, found in the
disk cache after the first run of a seed, then 20 DCN epochs) with only ``lamda`` changed; ``paper`` is the
default, ``lamda=None``, i.e. the paper's 0.05 divided by the input dimension (lecture 06, section 1.2), and 0
trains the reconstruction alone while the centroids follow. Per run it records the k-means start, DCN's own
``labels_`` (the nearest centroid), k-means re-run on the final embedding with 10 restarts (labels-free, as in the
taxonomy's "final k-means"), the k-means term and the reconstruction error of the last epoch, and the embedding's
standard deviation (how far it contracted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_lamda(text: str) -> float | None:
    return None if text == "paper" else float(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mnist5k", help="a dclib dataset name")
    parser.add_argument("--lamdas", default="0,paper,0.01,1", help="comma-separated; 'paper' = the default")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--fast", action="store_true", help="500 digits and 2 + 2 epochs (CI)")
    parser.add_argument("--out", default=None, help="append one CSV row per run here")
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from dclib import evaluate, load_dataset
    from dclib.compare import make_estimator
    from dclib.methods.baselines import fit_kmeans
    from dclib.utils import timed_fit

    data = load_dataset(args.data)
    if args.fast:
        data = data.subset(500)
    y = data.y.cpu().numpy()
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for text in args.lamdas.split(","):
            model = make_estimator("dcn", data.n_clusters, seed, "cpu", args.fast).set_params(
                lamda=parse_lamda(text))
            seconds = timed_fit(model, data.X, "cpu")
            Z = model.transform(data.X)
            reclustered = fit_kmeans(Z, data.n_clusters, 10, seed).labels_
            h = model.history_
            row = {"data": args.data, "lamda": text, "lamda_": model.lamda_, "seed": seed,
                   "threads": torch.get_num_threads(),
                   "seconds": round(seconds, 2), "start_acc": evaluate(y, model.initial_labels_)["acc"],
                   **evaluate(y, model.labels_), "recluster_acc": evaluate(y, reclustered)["acc"],
                   "kmeans_term": h["kmeans"][-1] if h.get("kmeans") else np.nan,
                   "reconstruction": h["reconstruction"][-1] if h.get("reconstruction") else np.nan,
                   "z_std": float(np.std(Z))}
            rows.append(row)
            print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
            if args.out:
                out = Path(args.out)
                out.parent.mkdir(parents=True, exist_ok=True)
                pd.DataFrame([row]).to_csv(out, mode="a", header=not out.exists(), index=False)
    table = pd.DataFrame(rows).groupby("lamda", sort=False)[
        ["start_acc", "acc", "nmi", "recluster_acc", "kmeans_term", "reconstruction", "z_std", "seconds"]]
    print()
    print(table.agg(lambda s: f"{s.mean():.3f} ± {s.std(ddof=1) if len(s) > 1 else 0.0:.3f}").to_string())


if __name__ == "__main__":
    main()
