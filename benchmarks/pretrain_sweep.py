"""How the autoencoder's pretraining budget moves AE + k-means and DEC on the CPU (issue #9's accuracy gap).

    python benchmarks/pretrain_sweep.py --configs base,b128,e40 --seeds 3 --threads 1 \
        --out benchmarks/measured/pretrain_sweep_cpu_2026-11-26.csv
    python benchmarks/pretrain_sweep.py --configs base,glorot --seeds 6 --threads 1 \
        --out benchmarks/measured/pretrain_sweep_init_cpu_2026-11-26.csv       # the initialisation (session 9)
    python benchmarks/pretrain_sweep.py --configs glorot,glorot-lr2,glorot-drop0.1,glorot-drop0.2 --seeds 6 \
        --threads 1 --out benchmarks/measured/pretrain_sweep_noise_lr_cpu_2026-11-26.csv  # session 10
    python benchmarks/pretrain_sweep.py --configs base --seeds 1 --fast          # tiny settings, same code path

Each config pretrains the course's d-500-500-2000-10 autoencoder (from PyTorch's default weights or
Glorot-uniform ones, the config's ``init``) end to end (Adam, MSE: the loss of
``dclib.train.pretrain_end_to_end``, through the same shared ``dclib.train.train`` loop) with its own
batch size, epochs, learning rate, input dropout and learning-rate schedule (constant, cosine or linear decay to 0,
optional linear warm-up, set per iteration from the loop's ``before_batch`` hook), then reads out
AE + k-means (10 restarts) and DEC with the course's clustering settings (update interval 20, at most
300 iterations, SGD lr 0.01 unless ``dec_lr`` says otherwise). One CSV row per (config, seed); the table
prints mean ± std. ClustPy 0.0.3 pretrains the same network for 50 epochs at batch 256, lr 1e-3, constant.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Config(NamedTuple):
    """One pretraining recipe: what the sweep varies."""

    batch_size: int
    epochs: int
    lr: float
    schedule: str = "constant"
    warmup: float = 0.0
    dec_lr: float = 0.01
    # MLPAutoencoder's initialisation: "torch" (PyTorch's default, what every config up to e50 was measured
    # with) or "glorot" (Keras' Glorot-uniform, MLPAutoencoder's default since session 9)
    init: str = "torch"
    # input dropout during pretraining (a denoising autoencoder, as DEC's stacked pretraining corrupts its
    # input): 0 trains on clean digits; the reconstruction target is always the clean digit
    input_dropout: float = 0.0


CONFIGS: dict[str, Config] = {
    "base": Config(256, 25, 1e-3),  # the course configuration (dclib.compare.PRETRAIN) up to session 8
    "cos1": Config(256, 25, 1e-3, "cosine"),
    "cos2": Config(256, 25, 2e-3, "cosine"),
    "cos3w": Config(256, 25, 3e-3, "cosine", 0.05),
    "lin2": Config(256, 25, 2e-3, "linear"),
    "const2": Config(256, 25, 2e-3),
    "b128": Config(128, 25, 1e-3),
    "b128e20": Config(128, 20, 1e-3),
    "b128e20-dec0.03": Config(128, 20, 1e-3, dec_lr=0.03),
    "b128e20-dec0.1": Config(128, 20, 1e-3, dec_lr=0.1),
    "b64e20": Config(64, 20, 1e-3),
    "e40": Config(256, 40, 1e-3),
    "e50": Config(256, 50, 1e-3),  # ClustPy's budget
    "glorot": Config(256, 25, 1e-3, init="glorot"),  # the course configuration since session 9
    "glorot-b128": Config(128, 25, 1e-3, init="glorot"),
    "glorot-e20": Config(256, 20, 1e-3, init="glorot"),
    "glorot-lr2": Config(256, 25, 2e-3, init="glorot"),
    "glorot-drop0.1": Config(256, 25, 1e-3, init="glorot", input_dropout=0.1),
    "glorot-drop0.2": Config(256, 25, 1e-3, init="glorot", input_dropout=0.2),
}
COLUMNS = ["config", "seed", "batch_size", "epochs", "lr", "schedule", "warmup", "dec_lr", "init", "input_dropout",
           "threads", "final_loss", "pretrain_seconds", "ae_kmeans_acc", "ae_kmeans_nmi", "dec_acc", "dec_nmi",
           "dec_ari", "dec_seconds"]


def learning_rate(iteration: int, total: int, lr: float, schedule: str, warmup: float) -> float:
    """The learning rate of ``iteration`` (0-based) out of ``total``: warm-up, then the schedule's decay to 0."""
    warm = int(warmup * total)
    if iteration < warm:
        return lr * (iteration + 1) / warm
    progress = (iteration - warm) / max(1, total - warm)
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return lr * (1 - progress)
    return lr


def run(config: str, seed: int, X, y, fast: bool) -> dict:
    import torch
    import torch.nn.functional as F

    from dclib.methods import DEC
    from dclib.methods.baselines import fit_kmeans
    from dclib.metrics import evaluate
    from dclib.models import MLPAutoencoder
    from dclib.train import embed, train
    from dclib.utils import make_generator, seed_everything

    batch_size, epochs, lr, schedule, warmup, dec_lr, init, input_dropout = CONFIGS[config]
    epochs = 1 if fast else epochs
    seed_everything(seed)
    ae = MLPAutoencoder((X.shape[1], 500, 500, 2000, 10), init=init)
    optimizer = torch.optim.Adam(ae.parameters(), lr=lr)
    total = epochs * math.ceil(len(X) / batch_size)

    def set_lr(iteration: int) -> bool:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(iteration, total, lr, schedule, warmup)
        return False

    def step(idx):
        x = X[idx]
        return F.mse_loss(ae(F.dropout(x, input_dropout) if input_dropout else x), x)

    start = time.perf_counter()
    history = train(step, optimizer, len(X), epochs=epochs, batch_size=batch_size, device=X.device,
                    generator=make_generator(seed, X.device), before_batch=set_lr, show_progress=False)
    pretrain_seconds = time.perf_counter() - start
    ae.eval()
    km = evaluate(y, fit_kmeans(embed(ae.encode, X), 10, 10, seed).labels_)
    start = time.perf_counter()
    dec = DEC(10, autoencoder=ae, pretrain=None, update_interval=20, max_iter=40 if fast else 300, lr=dec_lr,
              device=str(X.device), random_state=seed).fit(X)
    dec_seconds = time.perf_counter() - start
    scores = evaluate(y, dec.labels_)
    return dict(config=config, seed=seed, batch_size=batch_size, epochs=epochs, lr=lr, schedule=schedule,
                warmup=warmup, dec_lr=dec_lr, init=init, input_dropout=input_dropout, threads=torch.get_num_threads(),
                final_loss=round(history.last("loss"), 5), pretrain_seconds=round(pretrain_seconds, 1),
                ae_kmeans_acc=round(km["acc"], 4), ae_kmeans_nmi=round(km["nmi"], 4),
                dec_acc=round(scores["acc"], 4), dec_nmi=round(scores["nmi"], 4), dec_ari=round(scores["ari"], 4),
                dec_seconds=round(dec_seconds, 1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="base,b128,e40", help=f"comma list from {sorted(CONFIGS)}")
    parser.add_argument("--seeds", default="3", help="a count N (seeds 0..N-1) or a comma list, e.g. 0,2")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default="results/pretrain_sweep.csv")
    parser.add_argument("--fast", action="store_true", help="500 digits, 1 epoch, 40 DEC iterations")
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd
    import torch

    from dclib import load_dataset

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {sorted(CONFIGS)}")
    seeds = list(range(int(args.seeds))) if "," not in args.seeds and args.seeds.isdigit() else \
        [int(s) for s in args.seeds.split(",")]
    if not seeds:
        parser.error("--seeds 0 runs nothing: give a count >= 1 (seeds 0..N-1) or a comma list such as 0,2")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("mnist5k")
    if args.fast:
        data = data.subset(500, random_state=0)
    X, y = data.X_flat, np.asarray(data.y)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists() or out.stat().st_size == 0
    with out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for config in configs:
            for seed in seeds:
                row = run(config, seed, X, y, args.fast)
                writer.writerow(row)
                f.flush()
                print(row, flush=True)
    rows = pd.read_csv(out)
    table = rows.groupby("config", sort=False)[["ae_kmeans_acc", "dec_acc", "dec_nmi", "pretrain_seconds"]]
    print(table.agg(["mean", "std"]).round(3).to_string())


if __name__ == "__main__":
    main()
