"""Benchmark the course's methods: one table of ACC/NMI/ARI (mean ± std over seeds) and seconds.

    python benchmarks/bench_methods.py --data mnist5k --methods kmeans,ae-kmeans,dec,idec,vade --seeds 3
    python benchmarks/bench_methods.py --data mnist --root data --device cuda --methods dec --seeds 3

Every fit starts from scratch (no pretraining cache is read or written), so the seconds include
pretraining. Record the printed table in benchmarks/RESULTS.md with the
date, the device and the command.
"""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--root", default=None)
    parser.add_argument("--methods", default="kmeans,ae-kmeans,dec,idec,vade")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="results")
    parser.add_argument("--keep-cache", action="store_true", help="reuse cached pretraining (not a fair timing)")
    args = parser.parse_args()

    import torch

    from dclib.compare import compare, format_table, save_results, summarise

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu"
    print(f"# {date.today()} | {args.data} | device {device} ({name}, {torch.get_num_threads()} threads) | "
          f"torch {torch.__version__}", flush=True)
    runs = compare(args.data, args.methods, args.seeds, device=args.device, root=args.root,
                   reuse_pretraining=args.keep_cache)
    print()
    print(format_table(summarise(runs)))
    save_results(runs, args.out, f"bench_{args.data}")


if __name__ == "__main__":
    main()
