"""Lecture 07's taxonomy experiments over seeds: one CSV row per (experiment, seed), then mean ± std.

    python benchmarks/taxonomy_grid.py --seeds 3 --device cpu --out benchmarks/measured/taxonomy_grid_cpu_2026-11-26.csv
    python benchmarks/taxonomy_grid.py --seeds 3 --device cuda --extra-conv-pretrain-epochs 100
    python benchmarks/taxonomy_grid.py --fast --seeds 1 --out /tmp/grid.csv        # tiny settings, same code path

The grid (clustering losses × λ schedules × joint/alternating on the MLP autoencoder, DEC vs DBC, the
taxonomy paper's method, and the AE + k-means start) and its budgets come from ``dclib.taxonomy_grid``,
which ``notebooks/07_taxonomy.ipynb`` imports too. Each row records both read-outs (the loss's own
assignment and k-means on the final embedding). Pretrained autoencoders are cached by dclib, so the
experiments of one seed share one MLP and one convolutional pretraining; ``seconds`` excludes it and
``pretrain_seconds`` records it. Rows are appended as they finish, and an existing CSV is resumed
(rows already there are skipped), so an interrupted run loses at most one fit; ``--only`` picks experiments
by name, so the important ones can be run first.
``--extra-conv-pretrain-epochs`` repeats DBC and the taxonomy method with a longer-pretrained
convolutional autoencoder (rows differ in ``pretrain_epochs``).
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _done(path: Path) -> set[tuple[str, int, int]]:
    if not path.exists() or path.stat().st_size == 0:
        return set()
    with path.open(newline="") as f:
        return {(r["experiment"], int(r["seed"]), int(r["pretrain_epochs"])) for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="3", help="a count N (seeds 0..N-1) or a comma list, e.g. 0,2")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="results/taxonomy_grid.csv")
    parser.add_argument("--fast", action="store_true", help="tiny settings (500 digits, 1-2 epochs), same code path")
    parser.add_argument("--n-samples", type=int, default=None, help="override the number of digits")
    parser.add_argument("--conv-pretrain-epochs", type=int, default=None,
                        help="conv autoencoder pretraining epochs (DBC, taxonomy method); default: the lecture's")
    parser.add_argument("--extra-conv-pretrain-epochs", default="",
                        help="comma list: also run DBC and the taxonomy method with these conv pretraining budgets")
    parser.add_argument("--only", default="", help="comma list of substrings: run only experiments whose name has one")
    args = parser.parse_args(argv)

    import pandas as pd
    import torch

    from dclib import load_dataset
    from dclib.taxonomy_grid import COLUMNS, experiments, run_experiment, settings, summarise
    from dclib.utils import get_device

    device = get_device(args.device)
    overrides = {k: v for k, v in (("n_samples", args.n_samples), ("conv_pretrain_epochs", args.conv_pretrain_epochs))
                 if v is not None}
    base = settings(args.fast, **overrides)
    seeds = list(range(int(args.seeds))) if args.seeds.isdigit() else [int(s) for s in args.seeds.split(",")]
    extra = [int(e) for e in args.extra_conv_pretrain_epochs.split(",") if e.strip()]
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    plan = [(e, base) for e in experiments() if not wanted or any(w in e.name for w in wanted)]
    plan += [(e, settings(args.fast, **{**overrides, "conv_pretrain_epochs": n}))
             for n in extra for e in experiments() if e.architecture == "conv"]

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"# {date.today()} | mnist5k[:{base.n_samples}] | device {device} ({name}, {torch.get_num_threads()} "
          f"threads) | torch {torch.__version__} | {base}", flush=True)
    data = load_dataset("mnist5k", device=device).subset(base.n_samples)
    X, y = data.X, data.y.cpu().numpy()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _done(out)
    new_file = not done and not (out.exists() and out.stat().st_size)
    with out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        if new_file:
            writer.writeheader()
        # Experiment-major, so a partial run already gives mean ± std for the experiments it finished;
        # each seed's pretrainings are cached on the first use and loaded afterwards.
        for exp, s in plan:
            for seed in seeds:
                budget = s.conv_pretrain_epochs if exp.architecture == "conv" else s.pretrain_epochs
                if (exp.name, seed, budget) in done:
                    continue
                row, _ = run_experiment(exp, X, y, s, device, seed)
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
                f.flush()
                print(f"seed {seed} | {exp.name:45s} | pretrain {row['pretrain_epochs']:3d} ep | "
                      f"ACC own {row['acc_own']:.3f} k-means {row['acc_kmeans']:.3f} | "
                      f"{row['seconds']:.1f} s (+ pretrain {row['pretrain_seconds']:.1f} s)", flush=True)

    df = pd.read_csv(out)
    table = summarise(df[df["seed"].isin(seeds)])
    fmt = pd.DataFrame(index=table.index)
    fmt["seeds"] = table["seeds"]
    for m in ("acc_own", "acc_kmeans", "nmi_kmeans", "ari_kmeans", "seconds"):
        digits = 1 if m == "seconds" else 3
        cells = zip(table[f"{m} mean"], table[f"{m} std"], table["seeds"], strict=True)
        fmt[m] = [f"{a:.{digits}f} ± {b:.{digits}f}" if n > 1 else f"{a:.{digits}f}" for a, b, n in cells]
    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.max_rows", 100):
        print()
        print(fmt.to_string())
    print(f"\nrows in {out}")


if __name__ == "__main__":
    main()
