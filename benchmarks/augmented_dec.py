"""AE + k-means and DEC from a plain or an augmented pretraining, on the CPU (session 14).

    python benchmarks/augmented_dec.py --data mnist-test --root DIR --seed 0 --augment affine --out rows.csv

Both fits use one autoencoder (end to end, squared error, ``--pretrain-epochs``; the disk cache shares it), with
``pretrain_augment=True`` (DEC-DA's shifts and rotations, Guo et al. 2018) or without. DEC runs with
``benchmarks/gpu.py``'s test-set settings (update interval 140, tol 0.001). One row per fit: ACC/NMI/ARI, seconds.
Why: VaDE's start rose from ~0.71 to ~0.93 on the test digits with the augmented pretraining; does DEC's too?
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--root", default=None, help="folder holding MNIST/raw/ (for mnist-test, mnist)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", choices=("none", "affine"), default="affine")
    parser.add_argument("--pretrain-epochs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="append the rows to this CSV")
    args = parser.parse_args()
    os.environ.setdefault("DCLIB_CACHE", tempfile.mkdtemp(prefix="dclib-augmented-dec-"))

    import pandas as pd
    import torch

    from dclib import DEC, AEKMeans, evaluate, load_dataset

    torch.set_num_threads(args.threads)
    data = load_dataset(args.data, root=args.root)
    shared = dict(pretrain="end-to-end", pretrain_epochs=args.pretrain_epochs,
                  pretrain_augment=args.augment == "affine", device="cpu", random_state=args.seed)
    rows = []
    for name, model in (("ae-kmeans", AEKMeans(data.n_clusters, **shared)),
                        ("dec", DEC(data.n_clusters, update_interval=140, tol=0.001, **shared))):
        start = time.perf_counter()
        model.fit(data.X)
        scores = {k: round(v, 4) for k, v in evaluate(data.y, model.labels_).items()}
        row = dict(data=args.data, method=name, seed=args.seed, augment=args.augment,
                   pretrain_epochs=args.pretrain_epochs, **scores,
                   seconds=round(time.perf_counter() - start, 1), n_iter=getattr(model, "n_iter_", None),
                   threads=args.threads)
        print(row, flush=True)
        rows.append(row)
    if args.out:
        out = Path(args.out)
        pd.DataFrame(rows).to_csv(out, mode="a", header=not out.exists(), index=False)


if __name__ == "__main__":
    main()
