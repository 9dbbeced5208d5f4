"""VaDE's mixture start, paired: the same autoencoder per seed, each ``mixture_start`` in turn.

    python benchmarks/vade_start.py --seeds 6 --starts gmm,kmeans,best

Why: VaDE ends close to where its Gaussian mixture starts (lecture 04, section 8), so the choice of
start decides much of its seed spread. For every seed the autoencoder is pretrained once (the
course configuration: 25 BCE epochs) into a temporary cache, then VaDE (20 ELBO epochs) is fitted
from it once per start. The table gives the start's ACC, the candidates' mean log-likelihoods, the
final ACC/NMI/ARI and the seconds of the fit after pretraining (mixture fit + ELBO epochs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--root", default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--starts", default="gmm,kmeans,best")
    parser.add_argument("--pretrain-epochs", type=int, default=25)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="append the rows to this CSV")
    args = parser.parse_args()
    os.environ["DCLIB_CACHE"] = tempfile.mkdtemp(prefix="dclib-vade-start-")

    import pandas as pd
    import torch

    from dclib import VaDE, load_dataset
    from dclib.metrics import evaluate
    from dclib.utils import timed_fit

    data = load_dataset(args.data, root=args.root)
    X, y = data.X, data.y.numpy()
    print(f"# {args.data} | device {args.device} | {torch.get_num_threads()} threads | torch {torch.__version__}")
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        config = dict(pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, device=args.device, random_state=seed)
        VaDE(data.n_clusters, **{**config, "epochs": 0}).fit(X)  # pretrain once, into the cache
        for start in args.starts.split(","):
            model = VaDE(data.n_clusters, mixture_start=start, **config)
            seconds = timed_fit(model, X)
            row = dict(seed=seed, start=start, chosen=model.mixture_start_,
                       **{f"loglik_{k}": round(v, 4) for k, v in model.mixture_log_likelihoods_.items()},
                       start_acc=round(evaluate(y, model.initial_labels_)["acc"], 4),
                       **{k: round(v, 4) for k, v in evaluate(y, model.labels_).items()},
                       seconds=round(seconds, 1))
            rows.append(row)
            print(row, flush=True)
    table = pd.DataFrame(rows)
    print("\n| start | seeds | start ACC | ACC | NMI | ARI | fit s after pretraining |\n|---|---|---|---|---|---|---|")
    for start, runs in table.groupby("start", sort=False):
        ms = {k: f"{runs[k].mean():.3f} ± {runs[k].std(ddof=0):.3f}" for k in ("start_acc", "acc", "nmi", "ari")}
        print(f"| {start} | {len(runs)} | {ms['start_acc']} | {ms['acc']} | {ms['nmi']} | {ms['ari']} | "
              f"{runs['seconds'].mean():.1f} |")
    if args.out:  # appended, like vs_clustpy.py's --out
        table.to_csv(args.out, mode="a", header=not Path(args.out).exists(), index=False)


if __name__ == "__main__":
    main()
