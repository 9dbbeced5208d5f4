"""Training throughput (samples per second) of DEC and IIC with one process, on the CPU or a GPU.

    python benchmarks/throughput.py --root data --device cuda --out benchmarks/measured   # full MNIST
    python benchmarks/throughput.py --root data --device cpu --n 10000                    # the same job on the CPU

Lecture 12 (``notebooks/12_scaling.ipynb``) reads the CSVs this writes and divides GPU by CPU
samples/second for the same job. Each phase is timed as the *difference* of two fits that differ
only in how long that phase runs, so set-up costs that do not grow with training (building the
model, the k-means initialisation, IIC's sub-head choice) cancel:

- ``dec-pretrain``: the autoencoder's end-to-end pretraining (replayed CUDA graphs on a GPU, as
  ``dclib`` does by default), 1 + E epochs minus 1 epoch, so the graph capture cancels; samples = n × E;
- ``dec-clustering``: DEC's KL phase at the paper's schedule (batch 256, target P recomputed on the
  whole dataset every 140 iterations, which is included: it is part of DEC's cost), from the
  cached autoencoder; samples = extra iterations × batch size;
- ``iic``: IIC's paper-size net (64-128-256 conv), one epoch = one pass per head (overclustering
  and main), each sample with its augmented copy; samples = extra epochs × 2 passes × n.

Throughput is per training sample, so a CPU run on a subset (``--n``) measures the same rate as a
full-data run as long as batches are full (DEC's target update is the only part that grows with n,
and it is counted in both). Every row is appended to ``<out>/throughput_<date>_<device>.csv``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CSV_COLUMNS = ["method", "data", "n", "device", "device_name", "torch", "batch_size", "steps", "seconds",
               "samples_per_s", "note"]


def measure(X, n_clusters: int, device, args) -> list[dict]:
    """The three phases' (steps, seconds, samples) on ``X`` (already on ``device``)."""
    from dclib import DEC, IIC
    from dclib.utils import timed_fit

    n = len(X)
    rows = []
    dec = lambda pretrain_epochs, max_iter, cache=True: DEC(
        n_clusters, pretrain="end-to-end", pretrain_epochs=pretrain_epochs, update_interval=140, tol=0.0,
        max_iter=max_iter, batch_size=256, n_init=1, cache=cache, device=str(device), random_state=0)
    flat = X.reshape(n, -1)
    timed_fit(dec(1, 2, cache=False), flat[:2048], device)  # warm-up: library start-up, kernels, graph capture
    one = dec(1, 1, cache=False)
    timed_fit(one, flat, device)
    more = dec(1 + args.pretrain_epochs, 1)  # cached: the DEC fits below start from it
    timed_fit(more, flat, device)
    rows.append(dict(method="dec-pretrain", steps=-(-n // 256) * args.pretrain_epochs,
                     seconds=more.pretrain_seconds_ - one.pretrain_seconds_, samples=n * args.pretrain_epochs))
    short = timed_fit(dec(1 + args.pretrain_epochs, 1), flat, device)
    long = timed_fit(dec(1 + args.pretrain_epochs, 1 + args.dec_iters), flat, device)
    rows.append(dict(method="dec-clustering", steps=args.dec_iters, seconds=long - short,
                     samples=args.dec_iters * 256))

    images = X.reshape(n, 1, 28, 28)
    iic = lambda epochs: IIC(n_clusters, epochs=epochs, batch_size=256, lr=1e-3, device=str(device), random_state=0)
    timed_fit(iic(1), images[:2048], device)  # warm-up: kernels chosen and compiled before the timed fits
    short = timed_fit(iic(1), images, device)
    long = timed_fit(iic(1 + args.iic_epochs), images, device)
    rows.append(dict(method="iic", steps=-(-n // 256) * 2 * args.iic_epochs, seconds=long - short,
                     samples=args.iic_epochs * 2 * n))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data", help="folder holding MNIST/raw/*.gz")
    parser.add_argument("--data", default="mnist", help="dclib dataset name (full MNIST by default)")
    parser.add_argument("--n", type=int, default=None, help="use the first n samples (a CPU run on a subset)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--dec-iters", type=int, default=700, help="timed DEC iterations (5 target updates)")
    parser.add_argument("--iic-epochs", type=int, default=1)
    parser.add_argument("--out", default="results/throughput")
    args = parser.parse_args()

    import pandas as pd
    import torch

    from dclib import load_dataset
    from dclib.utils import get_device

    device = get_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    os.environ.setdefault("DCLIB_CACHE", tempfile.mkdtemp(prefix="dclib-throughput-cache-"))
    name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or "cpu")
    name = f"{name} ({torch.get_num_threads()} threads)" if device.type == "cpu" else name
    ds = load_dataset(args.data, root=None if args.data in ("mnist5k", "digits") else args.root)
    if args.n:
        ds = ds.subset(min(args.n, len(ds)))
    X = ds.to(device).X
    rows = measure(X, ds.n_clusters, device, args)

    table = pd.DataFrame([{**r, "data": ds.name, "n": len(ds), "device": device.type, "device_name": name,
                           "torch": torch.__version__, "batch_size": 256,
                           "samples_per_s": r["samples"] / r["seconds"]} for r in rows]).reindex(columns=CSV_COLUMNS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"throughput_{date.today()}_{device.type}.csv"
    table.to_csv(csv, mode="a", header=not csv.exists(), index=False)
    print(table.to_string(index=False, formatters={"seconds": "{:.2f}".format, "samples_per_s": "{:,.0f}".format}))
    print(f"appended to {csv}")


if __name__ == "__main__":
    main()
