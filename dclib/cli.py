"""Command line: ``python -m dclib compare ...`` and ``python -m dclib fit ...``.

``fit`` also runs data parallel: ``torchrun --nproc-per-node 2 -m dclib fit --method dec``
(every rank fits its shard; rank 0 prints, writes the results and the ``--save`` checkpoint).
"""

from __future__ import annotations

import argparse
import sys

from .utils import is_fast


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="mnist5k", help="dataset name (see dclib.data.DATASETS)")
    p.add_argument("--root", default=None, help="folder with local datasets (torchvision layout)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--fast", action="store_true", default=is_fast(), help="tiny budget (also DCLIB_FAST=1)")
    p.add_argument("--n-samples", type=int, default=None, help="use a random subset of this size")
    p.add_argument("--out", default="results", help="folder for CSV files and figures")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dclib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser("compare", help="compare methods over seeds; print a table, write CSV + figure")
    cmp_.add_argument("--methods", default="all", help="comma-separated names or 'all'")
    cmp_.add_argument("--seeds", type=int, default=3)
    _common(cmp_)
    fit = sub.add_parser("fit", help="fit one method once and print its scores")
    fit.add_argument("--method", required=True)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--save", default=None, metavar="PATH",
                     help="write the fitted model here (load it with e.g. DEC.load(PATH))")
    _common(fit)
    args = parser.parse_args(argv)

    from . import distributed as dist

    # Under torchrun: join the process group (gloo for --device cpu, else nccl when CUDA is present).
    dist.init_distributed("gloo" if args.device == "cpu" else None)
    try:
        return _run(args)
    finally:
        dist.cleanup()


def _run(args: argparse.Namespace) -> int:
    from . import distributed as dist
    from .compare import compare, format_table, save_results, summarise

    models: dict | None = {} if args.command == "fit" else None
    try:
        if args.command == "compare":
            names, seeds, tag = args.methods, args.seeds, f"compare_{args.data}"
        else:
            names, seeds, tag = args.method, [args.seed], f"fit_{args.method}_{args.data}"
        n_samples = args.n_samples if args.n_samples is not None else (1000 if args.fast else None)
        runs = compare(args.data, names, seeds, device=args.device, fast=args.fast, root=args.root,
                       n_samples=n_samples, verbose=dist.rank() == 0, models=models)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if dist.rank() != 0:
        return 0
    if models is not None and args.save:
        models[(args.method, args.seed)].save(args.save)
        print(f"saved the fitted model to {args.save}")
    if dist.world_size() > 1:
        print(f"(data parallel over {dist.world_size()} processes)")
    print()
    print(format_table(summarise(runs)))
    paths = save_results(runs, args.out, tag)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return 0
