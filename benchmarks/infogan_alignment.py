"""Issue #10: does InfoGAN's categorical code line up with the digit classes? One CSV row per (config, seed).

    python benchmarks/infogan_alignment.py --name default --seeds 0,1,2
    python benchmarks/infogan_alignment.py --name q_hidden128 --set q_hidden=128 --seeds 0,1,2
    python benchmarks/infogan_alignment.py --name paper_nets --set width=64 hidden=1024 gen_hidden=1024 \\
        batch_norm=True spectral_norm=False q_hidden=128 batch_size=100 --epochs 3
    python benchmarks/infogan_alignment.py --summary          # only print the table of the CSV

Each run fits ``dclib.methods.InfoGAN`` on mnist5k (images in [0, 1]) with the library defaults except
``--set key=value`` overrides (values read as Python literals) and ``--epochs``, then scores
argmax Q(c|x) on the real digits against the labels (ACC/NMI/ARI) and records the seconds, the last
epoch's information bound and how evenly the generator uses the codes. Rows are appended as they finish.
The CPU is shared with other jobs, so ``seconds`` are loaded-machine timings (1 thread by default).
``gen_code_acc`` scores the generator alone: its code against a 5-NN digit classifier on generated images.
Rows before the ``noise_std = 0.3`` default (the outcome of this study) record ``noise_std: 1.0`` explicitly,
so every row reruns with today's library; ``old_default_noise_std1.0`` is the library default before it.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import sys
import time
import warnings
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_OUT = Path(__file__).resolve().parent / "measured" / f"infogan_alignment_cpu_{date(2026, 11, 26)}.csv"
COLUMNS = ["date", "name", "overrides", "data", "n", "epochs", "seed", "device", "threads", "seconds", "acc",
           "nmi", "ari", "acc_by_epoch", "info_cat", "gen_min", "gen_max", "pred_min", "gen_code_acc", "gen_code_nmi"]


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``["q_hidden=128", "batch_norm=True"]`` → ``{"q_hidden": 128, "batch_norm": True}``."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value  # a bare string, e.g. device=cpu
    return out


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → [0, 1, 2]."""
    return [int(s) for s in text.split(",") if s.strip()]


def generated_code_scores(model, X, y, n_per_code: int = 200) -> dict[str, float]:
    """Does the *generator* put one digit per code? ACC/NMI of the codes against a 5-NN digit classifier
    fitted on the real labelled digits, read on ``n_per_code`` images per code.

    This separates the two ways InfoGAN's clustering can fail: a generator whose codes are not digits
    (low here) or a Q that reads the code from fakes but does not transfer to real digits (high here,
    low ACC on the real digits).
    """
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    from dclib import evaluate

    knn = KNeighborsClassifier(5).fit(X.reshape(len(X), -1).cpu().numpy(), y)
    codes = np.repeat(np.arange(model.n_clusters), n_per_code)
    images = np.concatenate([model.sample(n_per_code, cluster=c, random_state=1000 + c)
                             for c in range(model.n_clusters)])
    return evaluate(knn.predict(images.reshape(len(images), -1)), codes)


def save_grid(model, path: Path, n_cols: int = 12) -> None:
    """One row of generated digits per categorical code (what the generator spends its code on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(model.n_clusters, n_cols, figsize=(n_cols * 0.6, model.n_clusters * 0.6))
    for c in range(model.n_clusters):
        for j, image in enumerate(model.sample(n_cols, cluster=c, random_state=c)):
            axes[c, j].imshow(image[0], cmap="gray", vmin=0, vmax=1)
            axes[c, j].axis("off")
    fig.savefig(path, dpi=60, bbox_inches="tight")
    plt.close(fig)


def run_one(name: str, overrides: dict[str, object], epochs: int, seed: int, n: int, device: str,
            threads: int, grid: Path | None = None) -> dict[str, object]:
    import numpy as np
    import torch

    from dclib import evaluate, load_dataset
    from dclib.methods import DegenerateClusteringWarning, InfoGAN

    torch.set_num_threads(threads)
    data = load_dataset("mnist5k", device=device)
    keep = np.sort(np.random.default_rng(0).permutation(len(data.X))[:n])  # mnist5k is sorted by digit
    X, y = data.X[torch.as_tensor(keep, device=data.X.device)], data.y[keep].numpy()
    kw = {"n_clusters": 10, "epochs": epochs, "device": device, "random_state": seed} | overrides
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateClusteringWarning)
        model = InfoGAN(**kw).fit(X, y)
    seconds = time.perf_counter() - start
    scores = evaluate(y, model.labels_)
    gen = model.generated_cluster_sizes_
    code_scores = generated_code_scores(model, X, y)
    if grid is not None:
        grid.mkdir(parents=True, exist_ok=True)
        save_grid(model, grid / f"{name}_e{epochs}_s{seed}.png")
    return {
        "date": str(date.today()), "name": name, "overrides": json.dumps(overrides, sort_keys=True),
        "data": "mnist5k", "n": len(X), "epochs": epochs, "seed": seed, "device": device, "threads": threads,
        "seconds": round(seconds, 1), "acc": round(scores["acc"], 4), "nmi": round(scores["nmi"], 4),
        "ari": round(scores["ari"], 4),
        "acc_by_epoch": " ".join(f"{a:.3f}" for a in model.history_["acc"]),
        "info_cat": round(model.history_["info_cat"][-1], 3), "gen_min": int(gen.min()), "gen_max": int(gen.max()),
        "pred_min": int(np.bincount(model.labels_, minlength=10).min()),
        "gen_code_acc": round(code_scores["acc"], 4), "gen_code_nmi": round(code_scores["nmi"], 4),
    }


def upgrade_header(path: Path) -> None:
    """Rewrite a CSV written before a column was added with today's columns (new cells left empty)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames == COLUMNS:
            return
        rows = list(reader)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, restval="")
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k in COLUMNS} for row in rows)


def summarise(path: Path) -> None:
    import pandas as pd

    if not path.exists():
        print(f"no runs in {path} yet")
        return
    df = pd.read_csv(path)
    rows = []
    for (name, epochs), g in df.groupby(["name", "epochs"], sort=False):
        rows.append({
            "name": name, "epochs": epochs, "seeds": len(g),
            "ACC mean": g["acc"].mean(), "ACC std": g["acc"].std(ddof=0),
            "NMI mean": g["nmi"].mean(), "seconds": g["seconds"].mean(),
            "gen code ACC": g["gen_code_acc"].mean() if "gen_code_acc" in g else float("nan"),
            "ACC per seed": " / ".join(f"{a:.3f}" for a in g.sort_values("seed")["acc"]),
        })
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(pd.DataFrame(rows).round(3).to_string(index=False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="default", help="a label for this configuration")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="InfoGAN keyword overrides")
    parser.add_argument("--epochs", type=int, default=3, help="3: dclib.compare's CPU budget for InfoGAN")
    parser.add_argument("--seeds", default="0", help="a comma list, e.g. 0,1,2")
    parser.add_argument("--n-samples", type=int, default=5000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--summary", action="store_true", help="only print the table of --out")
    parser.add_argument("--grid", type=Path, default=None, help="save a per-code sample grid (PNG) in this folder")
    args = parser.parse_args(argv)
    if args.summary:
        summarise(args.out)
        return
    overrides = parse_overrides(args.set)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in parse_seeds(args.seeds):
        row = run_one(args.name, overrides, args.epochs, seed, args.n_samples, args.device, args.threads,
                      args.grid)
        upgrade_header(args.out)
        new = not args.out.exists() or args.out.stat().st_size == 0
        with args.out.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(f"{row['name']} seed {seed}: ACC {row['acc']:.3f} NMI {row['nmi']:.3f} ARI {row['ari']:.3f} "
              f"in {row['seconds']:.0f} s | ACC by epoch {row['acc_by_epoch']} | L_I {row['info_cat']} | "
              f"generated per code {row['gen_min']}-{row['gen_max']} | generator's code vs 5-NN digit: ACC "
              f"{row['gen_code_acc']:.3f}", flush=True)
    summarise(args.out)


if __name__ == "__main__":
    main()
