"""The GPU benchmark: every method on the MNIST test set and on full MNIST, ClustPy beside ours.

    python benchmarks/gpu.py --root data --out results/gpu            # on a machine with a GPU
    python benchmarks/gpu.py --root data --device cpu --fast --n 600  # a dry run of every code path

What it runs, in priority order, until ``--deadline`` seconds have passed (a job that would not
start in time is skipped and listed as skipped, never silently dropped):

1. the course configuration (``make demo``'s) of DEC, IDEC, DCN and VaDE on ``mnist5k``, seed 0:
   the job whose 2-core CPU time is in benchmarks/RESULTS.md, for the GPU/CPU speed ratio;
2. ``mnist-test``, ours at the GPU budget below, every seed: AE + k-means, DEC, IDEC and DCN share
   one pretrained autoencoder per seed (its time is added to each of them), VaDE pretrains its own;
3. ClustPy 0.0.3's DEC and VaDE on ``mnist-test`` at the issue's budget (100 + 150 epochs), seed 0;
4. ours on full ``mnist``, seed 0; IIC on ``mnist-test``, seed 0; then the other seeds;
5. ClustPy's IDEC and DCN; IIC on full ``mnist``.

``--plan followup`` runs what the first plan's time did not reach and the methods added later, in
this order: the discriminative methods (IMSAT, DAC, DEPICT) on ``mnist-test`` seed by seed, ClustPy's
IDEC and DCN, IIC's other seeds, the adversarial and structure-based methods (whatever of
``FOLLOWUP_METHODS`` ``dclib.compare.METHODS`` has) on ``mnist-test``, then IMSAT on full ``mnist``.
``--plan followup2``: DAC and the newest methods on ``mnist-test`` seed 0 (JULE last), CatGAN on full ``mnist``,
IDEC and DCN with CUDA-graph pretraining, then the other seeds.
``--plan targets``: what the open issues still need, most wanted first: VaDE (fitted with
``final_mixture="full"``, so each row also records its own argmax-γ labels in ``own_acc``) and DCN (with the
paper's λ, its default since session 11) on ``mnist-test`` for every seed, VaDE on full ``mnist`` for every seed,
ClustPy's VaDE and DCN on ``mnist-test`` (seed 0), InfoGAN and CatGAN on full ``mnist``, then DEN, the embedding
method and JULE on full ``mnist`` (JULE last: the slowest per seed when the plan was written).
``--plan graphs`` (``benchmarks/gpu_graphs.sh``): ours (with DCN) and ClustPy's DEC, IDEC and VaDE on ``mnist-test``
in one run, now that our clustering steps replay CUDA graphs, then VaDE and DEC on full ``mnist``. Rows whose
method ends in ``+da`` pretrained on shifted and rotated digits (``pretrain_augment=True``).
Methods without a ``GPU_BUDGET`` entry run ``dclib.compare``'s own GPU configuration.
``--plan vade``: #9's VaDE row: ``vade+da`` with its full-covariance EM batched on the GPU (the default there),
in scikit-learn on the CPU (``vade+da-sklearn``) and in parallel CPU processes (``vade+da-jobs``), side by side per
seed, ClustPy's VaDE beside them, then full ``mnist`` (ClustPy's VaDE there last).

Every finished run is appended at once to ``<out>/gpu_runs.csv`` (so a run stopped by a time
limit keeps what it measured) and the table is printed at the end. Seconds are wall-clock with
``torch.cuda.synchronize()`` around each fit; "seconds" includes the fit's pretraining even when
the weights were shared through the cache. TF32 matrix products are on (``--no-tf32`` to disable).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import date
from fnmatch import fnmatch
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Ours on the GPU: the course's estimators with the budgets the papers use, scaled so that the
# test set (10k) and full MNIST (70k) get a similar number of pretraining steps (~8k and ~14k).
GPU_BUDGET: dict[str, dict[str, dict]] = {
    "mnist-test": {
        "ae": dict(pretrain_epochs=200),
        "dec": dict(pretrain_epochs=200, update_interval=140, max_iter=20000, tol=0.001),
        "idec": dict(pretrain_epochs=200, update_interval=140, max_iter=20000, tol=0.001),
        "dcn": dict(pretrain_epochs=200, epochs=50),
        "vade": dict(pretrain_epochs=200, epochs=100),
        "iic": dict(epochs=50),
    },
    "mnist": {
        "ae": dict(pretrain_epochs=50),
        "dec": dict(pretrain_epochs=50, update_interval=140, max_iter=20000, tol=0.001),
        "idec": dict(pretrain_epochs=50, update_interval=140, max_iter=20000, tol=0.001),
        "dcn": dict(pretrain_epochs=50, epochs=20),
        "vade": dict(pretrain_epochs=50, epochs=30),
        "iic": dict(epochs=20),
        "catgan": dict(epochs=5),  # session 4's full-MNIST runs (then at lr 2e-4), now at the default lr
        "infogan": dict(epochs=5),  # 350k images: 35x the 10k images after which its code lines up on mnist5k
    },
}
FAST_BUDGET = {"ae": dict(pretrain_epochs=2), "dec": dict(pretrain_epochs=2, max_iter=30),
               "idec": dict(pretrain_epochs=2, max_iter=30), "dcn": dict(pretrain_epochs=2, epochs=1),
               "vade": dict(pretrain_epochs=2, epochs=1), "iic": dict(epochs=1)}
CLUSTPY_EPOCHS = (100, 150)  # the ClustPy-on-H100 budget: pretraining + clustering epochs
# ClustPy on full MNIST: DEC at the budget for it, VaDE at ours (50 pretraining + 30 ELBO epochs), so that
# the time ratio compares like with like; a job's overrides replace CLUSTPY_EPOCHS.
CLUSTPY_FULL_MNIST = {"dec": dict(pretrain_epochs=50, clustering_epochs=50),
                      "vade": dict(pretrain_epochs=50, clustering_epochs=30)}


# Every row has the same columns (a method's extra ones are empty elsewhere), so that the appended CSV parses.
CSV_COLUMNS = ["data", "n", "library", "method", "seed", "device", "seconds", "fit_seconds", "shared_pretrain_seconds",
               "acc", "nmi", "ari", "n_iter", "iic_subhead_acc_mean", "iic_subhead_acc_std", "own_acc", "own_nmi",
               "pretrain_seconds", "mixture_seconds", "note"]


def _budget(data: str, method: str, fast: bool) -> dict:
    """The overrides of ``method`` on ``data`` (AE + k-means uses the "ae" entry); {} for a method
    without an entry, which then runs ``dclib.compare``'s own GPU configuration."""
    return (FAST_BUDGET if fast else GPU_BUDGET[data]).get("ae" if method == "ae-kmeans" else method, {})


@dataclass
class Job:
    """One fit: which data, whose implementation, which method, which seed, and a time guess."""

    data: str
    library: str  # "ours-gpu", "ours-course" or "clustpy"
    method: str
    seed: int
    guess_s: float = 10.0
    overrides: dict = field(default_factory=dict)
    variant: str = ""  # say "da": the row's method reads "vade+da", so that its runs get their own table line

    @property
    def name(self) -> str:
        """The method as the rows and tables name it: ``method`` or ``method+variant``."""
        return f"{self.method}+{self.variant}" if self.variant else self.method

    @property
    def key(self) -> str:
        """``data/library/name/seed``, what ``--jobs`` patterns match."""
        return f"{self.data}/{self.library}/{self.name}/{self.seed}"


def plan(seeds: int, fast: bool) -> list[Job]:
    """The jobs in priority order (see the module docstring)."""
    budget = lambda data, m: _budget(data, m, fast)
    ours = lambda data, seed, guesses: [Job(data, "ours-gpu", m, seed, g, budget(data, m)) for m, g in guesses]
    test_guesses = (("ae-kmeans", 15), ("dec", 8), ("idec", 8), ("dcn", 8), ("vade", 25))
    full_guesses = (("ae-kmeans", 25), ("dec", 15), ("idec", 20), ("dcn", 15), ("vade", 45))
    jobs = [Job("mnist5k", "ours-course", m, 0, 5) for m in ("dec", "idec", "dcn", "vade")]
    for seed in range(seeds):
        jobs += ours("mnist-test", seed, test_guesses)
    jobs += [Job("mnist-test", "clustpy", "dec", 0, 50), Job("mnist-test", "clustpy", "vade", 0, 70)]
    jobs += ours("mnist", 0, full_guesses)
    jobs += [Job("mnist-test", "ours-gpu", "iic", 0, 60, budget("mnist-test", "iic"))]
    for seed in range(1, seeds):
        jobs += ours("mnist", seed, full_guesses[:2])
    jobs += [Job("mnist-test", "ours-gpu", "iic", seed, 60, budget("mnist-test", "iic")) for seed in range(1, seeds)]
    for seed in range(1, seeds):
        jobs += ours("mnist", seed, full_guesses[2:])
    jobs += [Job("mnist-test", "clustpy", "idec", 0, 60), Job("mnist-test", "clustpy", "dcn", 0, 140)]
    jobs += [Job("mnist", "ours-gpu", "iic", 0, 150, budget("mnist", "iic"))]
    return jobs


# Methods added after the first GPU run; the followup plan runs those the library has.
FOLLOWUP_METHODS = ("infogan", "catgan", "den", "embedding", "jule")


def plan_followup(seeds: int, fast: bool) -> list[Job]:
    """The second GPU call's jobs in priority order (see the module docstring)."""
    from dclib.compare import METHODS

    budget = lambda data, m: _budget(data, m, fast)
    jobs = []
    for seed in range(seeds):
        jobs += [Job("mnist-test", "ours-gpu", m, seed, g, budget("mnist-test", m))
                 for m, g in (("imsat", 20), ("dac", 60), ("depict", 60))]
    jobs += [Job("mnist-test", "clustpy", "idec", 0, 60), Job("mnist-test", "clustpy", "dcn", 0, 140)]
    jobs += [Job("mnist-test", "ours-gpu", "iic", seed, 40, budget("mnist-test", "iic")) for seed in range(1, seeds)]
    jobs += [Job("mnist-test", "ours-gpu", m, 0, 60, budget("mnist-test", m)) for m in FOLLOWUP_METHODS if m in METHODS]
    jobs += [Job("mnist", "ours-gpu", "imsat", 0, 60, budget("mnist", "imsat"))]
    return jobs


def plan_followup2(seeds: int, fast: bool) -> list[Job]:
    """The third call: DAC (after its loss fix) and the newest methods seed 0 first, then CatGAN on full
    MNIST at its default lr, IDEC and DCN with CUDA-graph pretraining, then the other seeds."""
    from dclib.compare import METHODS

    budget = lambda data, m: _budget(data, m, fast)
    new = [m for m in FOLLOWUP_METHODS if m in METHODS]
    guess = {"dac": 40, "infogan": 40, "catgan": 40, "den": 30, "embedding": 30, "jule": 120}
    job = lambda m, seed: Job("mnist-test", "ours-gpu", m, seed, guess[m], budget("mnist-test", m))
    graphed = lambda seed: [Job("mnist-test", "ours-gpu", m, seed, g, budget("mnist-test", m))
                            for m, g in (("ae-kmeans", 8), ("idec", 15), ("dcn", 10))]  # IDEC, DCN share ae's
    quick = [m for m in ["dac", *new] if m != "jule"]  # JULE's time on 10k is unknown: after the others
    jobs = [job(m, 0) for m in quick] + [Job("mnist", "ours-gpu", "catgan", 0, 45, budget("mnist", "catgan"))]
    jobs += graphed(0) + [job(m, 0) for m in new if m == "jule"]
    jobs += [job("dac", seed) for seed in range(1, seeds)]
    for seed in range(1, seeds):
        jobs += graphed(seed) + [job(m, seed) for m in new]
    return jobs


def plan_targets(seeds: int, fast: bool) -> list[Job]:
    """The open issues' remaining GPU rows (#5, #7, #9, #10, #11), most wanted first."""
    budget = lambda data, m: _budget(data, m, fast)
    vade = lambda data, seed, guess: Job(data, "ours-gpu", "vade", seed, guess,
                                          {**budget(data, "vade"), "final_mixture": "full"})
    ours = lambda data, m, seed, guess: Job(data, "ours-gpu", m, seed, guess, budget(data, m))
    jobs = []
    for seed in range(seeds):  # DCN shares AE + k-means's autoencoder (its time is charged to DCN)
        jobs += [vade("mnist-test", seed, 25), ours("mnist-test", "ae-kmeans", seed, 8),
                 ours("mnist-test", "dcn", seed, 10)]
    jobs += [vade("mnist", seed, 45) for seed in range(seeds)]
    jobs += [Job("mnist-test", "clustpy", "vade", 0, 70), Job("mnist-test", "clustpy", "dcn", 0, 140)]
    for m, guess in (("infogan", 60), ("catgan", 45), ("den", 60), ("embedding", 60), ("jule", 120)):
        jobs += [ours("mnist", m, seed, guess) for seed in range(seeds)]
    return jobs


# DEC-DA's pretraining (Guo et al., 2018): the autoencoder reconstructs shifted and rotated digits, end to end.
AUGMENTED = dict(pretrain="end-to-end", pretrain_augment=True)
# VaDE as measured on the CPU in sessions 14-15: 30 ELBO epochs (it moves little after 20), and 20 k-means++-seeded
# restarts of the full start's EM, which on full MNIST find the mixture that separates the digits (session 15).
VADE_AUGMENTED = dict(pretrain_augment=True, mixture_start="full", final_mixture="full", n_init=20, epochs=30)


def _ours(data: str, method: str, seed: int, guess: float, fast: bool, variant: str = "", **extra) -> Job:
    """One of our fits at the GPU budget: a variant's settings override the budget's, and ``--fast``'s epochs
    override both (a dry run stays short)."""
    budget = _budget(data, method, fast)
    return Job(data, "ours-gpu", method, seed, guess, {**budget, **extra, **(budget if fast else {})}, variant)


def plan_graphs(seeds: int, fast: bool) -> list[Job]:
    """#9's same-machine speed table now that DEC's, IDEC's, DCN's and VaDE's own training steps replay CUDA
    graphs, and #5's VaDE from an augmented pretraining (``vade+da``: shifts and rotations, a full-covariance
    start, the full refit; on the CPU it reached 0.93-0.94 on its own labels on ``mnist-test``, session 14).
    In order: ours on ``mnist-test`` seed by seed (AE + k-means, DEC, IDEC, DCN sharing one plain autoencoder;
    ``vade+da``; AE + k-means and DEC sharing one augmented autoencoder, ``+da``), ClustPy's DEC, IDEC and VaDE
    on ``mnist-test`` (seed 0) on the same machine, then ``vade+da`` (#5) and DEC, plain and ``+da``, on full
    ``mnist``, and ClustPy's DEC (the issue's 50 + 50 epochs) and VaDE (our 50 + 30) on full ``mnist`` last.
    ``vade+da`` reached 0.948 on its own labels on full MNIST
    on the CPU (3 seeds, session 15) once its full start took 20 k-means++-seeded restarts."""
    ours = lambda data, m, seed, guess, variant="", **extra: _ours(data, m, seed, guess, fast, variant, **extra)
    jobs = []
    for seed in range(seeds):
        jobs += [ours("mnist-test", "ae-kmeans", seed, 8), ours("mnist-test", "dec", seed, 8),
                 ours("mnist-test", "idec", seed, 10), ours("mnist-test", "dcn", seed, 6),
                 ours("mnist-test", "vade", seed, 20, "da", **VADE_AUGMENTED),
                 ours("mnist-test", "ae-kmeans", seed, 10, "da", **AUGMENTED),
                 ours("mnist-test", "dec", seed, 8, "da", **AUGMENTED)]
    jobs += [Job("mnist-test", "clustpy", m, 0, g) for m, g in (("dec", 50), ("idec", 60), ("vade", 75))]
    jobs += [ours("mnist", "vade", seed, 60, "da", **VADE_AUGMENTED) for seed in range(seeds)]
    for seed in range(seeds):  # DEC on full MNIST (ClustPy's 129 s in the issue), sharing AE + k-means's autoencoder
        jobs += [ours("mnist", "ae-kmeans", seed, 15), ours("mnist", "dec", seed, 10),
                 ours("mnist", "ae-kmeans", seed, 20, "da", **AUGMENTED),
                 ours("mnist", "dec", seed, 10, "da", **AUGMENTED)]
    # #9's and #5's full-MNIST time ratios need ClustPy's DEC and VaDE on the same data: last, the longest jobs
    # (session 16 ran exactly these two through a script, after the plan's deadline had dropped them).
    jobs += [Job("mnist", "clustpy", m, 0, guess, CLUSTPY_FULL_MNIST[m]) for m, guess in (("dec", 110), ("vade", 150))]
    return jobs


def plan_vade(seeds: int, fast: bool) -> list[Job]:
    """#9's VaDE row, the one session 16 left above 0.2x ClustPy's time (14.1 s against 59.5 s on the MNIST test
    set). Most of ``vade+da``'s time past its pretraining was scikit-learn's EM on the CPU, above all the full
    start's 20 restarts. Per seed, on one machine, three fits that differ only in where that EM runs: ``vade+da``
    (the default ``mixture_backend="auto"``: on a GPU, ``dclib.mixture`` batches the restarts there),
    ``vade+da-sklearn`` (scikit-learn, one process: session 16's fit) and ``vade+da-jobs`` (scikit-learn,
    ``n_jobs=-1``: the restarts in parallel processes). All three fit the same mixtures (tested), so the triple
    times the lever alone. Then ClustPy's VaDE on ``mnist-test`` beside them, every seed (session 16 had ClustPy's
    seed 0 only, and #9 asks for means over seeds); ``vade+da`` on full ``mnist``; ClustPy's DEC and IDEC on
    ``mnist-test`` for the other seeds; and ClustPy's VaDE on full ``mnist`` at the issues' 100 + 150 epochs last
    (about 420 s: a call of its own, ``--jobs 'mnist/clustpy/*'``)."""
    jobs = []
    for seed in range(seeds):
        jobs += [_ours("mnist-test", "vade", seed, 12, fast, "da", **VADE_AUGMENTED),
                 _ours("mnist-test", "vade", seed, 15, fast, "da-sklearn", **VADE_AUGMENTED, mixture_backend="sklearn"),
                 _ours("mnist-test", "vade", seed, 15, fast, "da-jobs", **VADE_AUGMENTED, mixture_backend="sklearn",
                       n_jobs=-1)]
    jobs += [Job("mnist-test", "clustpy", "vade", seed, 65) for seed in range(seeds)]
    jobs += [_ours("mnist", "vade", seed, 25, fast, "da", **VADE_AUGMENTED) for seed in range(seeds)]
    jobs += [Job("mnist-test", "clustpy", m, seed, 45) for seed in range(1, seeds) for m in ("dec", "idec")]
    return jobs + [Job("mnist", "clustpy", "vade", 0, 450)]


def matches(job: Job, patterns: set[str]) -> bool:
    """Whether ``job`` matches one of ``--jobs``'s shell-style patterns of data/library/method/seed."""
    return any(fnmatch(job.key, pattern) for pattern in patterns)


PLANS = {"first": plan, "followup": plan_followup, "followup2": plan_followup2, "targets": plan_targets,
         "graphs": plan_graphs, "vade": plan_vade}


def build(job: Job, n_clusters: int, device: str, fast: bool):
    """The estimator for ``job`` (ClustPy's or ours)."""
    if job.library == "clustpy":
        from clustpy import deep

        pre, clu = (1, 1) if fast else CLUSTPY_EPOCHS
        epochs = {"pretrain_epochs": pre, "clustering_epochs": clu, **({} if fast else job.overrides)}
        cls = {"dec": deep.DEC, "idec": deep.IDEC, "dcn": deep.DCN, "vade": deep.VaDE}[job.method]
        return cls(n_clusters, **epochs, batch_size=256, random_state=job.seed, device=device)
    from dclib.compare import make_estimator

    model = make_estimator(job.method, n_clusters, job.seed, device, fast)
    if job.library == "ours-course" and "cache" in model.get_params():
        return model.set_params(cache=False)  # the CPU numbers it is compared with used no cache
    return model.set_params(**job.overrides)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data", help="folder holding MNIST/raw/*.gz")
    parser.add_argument("--out", default="results/gpu")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--deadline", type=float, default=480.0, help="seconds; later jobs are skipped")
    parser.add_argument("--only", default=None, help="comma-separated data names to run (default: all)")
    parser.add_argument("--methods", default=None, help="comma-separated methods to run (default: all)")
    parser.add_argument("--libraries", default=None, help="ours-course, ours-gpu and/or clustpy (default: all)")
    parser.add_argument("--fast", action="store_true", help="tiny epochs: check every code path")
    parser.add_argument("--n", type=int, default=None, help="use the first n samples of each dataset")
    parser.add_argument("--no-tf32", action="store_true")
    parser.add_argument("--done", default=None, help="a gpu_runs.csv whose runs are skipped (resume a plan)")
    parser.add_argument("--plan", choices=sorted(PLANS), default="first", help="which job list (see above)")
    parser.add_argument("--jobs", default=None,
                        help="comma-separated patterns of data/library/method/seed, shell-style (say "
                             "'mnist/*/vade/*,mnist-test/ours-gpu/*/0'): run only the plan's jobs that match one")
    parser.add_argument("--note", default="", help="written in every row's note column (say, what ran beside it)")
    args = parser.parse_args()

    import pandas as pd
    import torch

    from dclib import evaluate, load_dataset
    from dclib.utils import get_device, timed_fit

    t0 = time.perf_counter()
    dev = get_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = not args.no_tf32
    torch.backends.cudnn.allow_tf32 = not args.no_tf32
    torch.backends.cudnn.benchmark = True
    os.environ.setdefault("DCLIB_CACHE", tempfile.mkdtemp(prefix="dclib-gpu-cache-"))
    name = torch.cuda.get_device_name() if dev.type == "cuda" else (platform.processor() or "cpu")
    print(f"# {date.today()} | device {dev} ({name}) | torch {torch.__version__} | "
          f"{torch.get_num_threads()} CPU threads | tf32 {not args.no_tf32} | "
          f"CUDA graphs {os.environ.get('DCLIB_CUDA_GRAPHS', '1') != '0'} | deadline {args.deadline:.0f} s",
          flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "gpu_runs.csv"
    csv.unlink(missing_ok=True)

    datasets: dict = {}

    def dataset(data: str):
        if data not in datasets:
            ds = load_dataset(data, root=None if data == "mnist5k" else args.root)
            if args.n:
                ds = ds.subset(min(args.n, len(ds)))
            datasets[data] = (ds, ds.to(dev), ds.X.reshape(len(ds), -1).numpy().astype(np.float32))
        return datasets[data]

    wanted = lambda value: set(value.split(",")) if value else None
    only, methods, libraries = wanted(args.only), wanted(args.methods), wanted(args.libraries)
    patterns = wanted(args.jobs)
    rows, skipped = [], []
    done = set()
    if args.done:
        done = set(pd.read_csv(args.done)[["data", "library", "method", "seed"]].itertuples(index=False, name=None))
    # Warm-up (CUDA context, cuBLAS/cuDNN kernels): one tiny fit per model family, not recorded.
    from dclib.compare import charged_pretraining_seconds, make_estimator

    warm = load_dataset("mnist5k").subset(512)
    families = {"graphs": ("dec", "dcn", "vade"), "vade": ("vade",)}.get(
        args.plan, ("dec", "vade", "iic"))  # the plan's model families
    for m in families + (("imsat", "dac", "depict") if args.plan.startswith("followup") else ()):
        est = make_estimator(m, 10, 0, str(dev), True)
        est.set_params(**({"cache": False} if "cache" in est.get_params() else {})).fit(warm.X)
    if args.plan in ("graphs", "vade"):  # and the augmented pretraining's kernels (affine_grid, grid_sample)
        make_estimator("ae-kmeans", 10, 0, str(dev), True).set_params(cache=False, **AUGMENTED).fit(warm.X)
    if args.plan == "vade":  # and the batched EM's float64 kernels (Cholesky, triangular solves)
        from dclib.mixture import kmeanspp_mixture

        kmeanspp_mixture(np.random.default_rng(0).normal(size=(512, 10)), 10, n_init=2, random_state=0, device=dev)
    print(f"warm-up done at {time.perf_counter() - t0:.1f} s", flush=True)

    for job in PLANS[args.plan](args.seeds, args.fast):
        if (only and job.data not in only) or (methods and job.method not in methods) or (
                libraries and job.library not in libraries) or (job.data, job.library, job.name, job.seed) in done:
            continue
        if patterns and not matches(job, patterns):
            continue
        elapsed = time.perf_counter() - t0
        if elapsed + job.guess_s > args.deadline:
            skipped.append(f"{job.data}/{job.library}/{job.name}/seed{job.seed}")
            continue
        try:
            ds, ds_dev, X_np = dataset(job.data)
            model = build(job, ds.n_clusters, str(dev), args.fast)
            X = X_np if job.library == "clustpy" else ds_dev.X
            with warnings.catch_warnings(record=True) as caught:  # and shown below, as usual
                warnings.simplefilter("always")
                own = timed_fit(model, X, dev)
            for warning in caught:
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
        except Exception:  # a failed job is reported and the benchmark goes on
            print(f"FAILED {job}:\n{traceback.format_exc()}", flush=True)
            skipped.append(f"{job.data}/{job.library}/{job.name}/seed{job.seed} (error)")
            continue
        shared = charged_pretraining_seconds(model)  # a cached autoencoder's cost, as dclib.compare charges it
        seconds = own + shared
        scores = evaluate(ds.y, np.asarray(model.labels_))
        row = {"data": ds.name, "n": len(ds), "library": job.library, "method": job.name, "seed": job.seed,
               "device": dev.type, "seconds": seconds, "fit_seconds": own, "shared_pretrain_seconds": shared,
               **scores}
        notes = [args.note]
        if job.library == "clustpy":  # its budget, which differs between data sets
            notes.append(f"ClustPy {model.pretrain_epochs} + {model.clustering_epochs} epochs")
        # A CUDA-graph capture that failed trained that phase eagerly (dclib.train): its seconds are the slow path's.
        failed = [str(w.message) for w in caught if "CUDA graph failed" in str(w.message)]
        fell_back = list(dict.fromkeys(message.split(":")[0] for message in failed))  # the phases, once each
        if fell_back:
            notes.append("eager after a failed graph capture: " + ", ".join(fell_back))
        row["note"] = "; ".join(filter(None, notes))
        if job.method == "iic":
            subhead_accs = [evaluate(ds.y, lab)["acc"] for lab in model.subhead_labels_]
            row["iic_subhead_acc_mean"] = float(np.mean(subhead_accs))
            row["iic_subhead_acc_std"] = float(np.std(subhead_accs))
        if hasattr(model, "n_iter_"):
            row["n_iter"] = model.n_iter_
        for phase in ("pretrain", "mixture"):  # where our fit's time went: pretraining, VaDE's EM
            if getattr(model, f"{phase}_seconds_", None) is not None:
                row[f"{phase}_seconds"] = getattr(model, f"{phase}_seconds_")
        if getattr(model, "final_mixture_", None) is not None:  # VaDE's refit: also score its own argmax γ
            own_scores = evaluate(ds.y, np.asarray(model.own_labels_))
            row["own_acc"], row["own_nmi"] = own_scores["acc"], own_scores["nmi"]
        rows.append(row)
        pd.DataFrame([row]).reindex(columns=CSV_COLUMNS).to_csv(csv, mode="a", header=not csv.exists(), index=False)
        own_acc = f" own_acc={row['own_acc']:.3f} own_nmi={row['own_nmi']:.3f}" if "own_acc" in row else ""
        print(f"  {ds.name:<10} {job.library:<11} {job.name:<13} seed={job.seed} acc={scores['acc']:.3f} "
              f"nmi={scores['nmi']:.3f} ari={scores['ari']:.3f}{own_acc} {seconds:7.1f}s (fit {own:.1f}s) "
              f"[{time.perf_counter() - t0:.0f}s]", flush=True)

    print()
    if rows:
        print(format_table(pd.DataFrame(rows)))
    if skipped:
        print(f"\nnot run ({len(skipped)}): " + ", ".join(skipped))
    print(f"total {time.perf_counter() - t0:.0f} s")


def format_table(runs) -> str:
    """Per data, library and method: seeds, seconds and ACC/NMI/ARI mean ± std."""
    lines = [f"{'data':<10} {'library':<11} {'method':<13} {'seeds':>5} {'seconds':>14} "
             f"{'ACC':>13} {'NMI':>13} {'ARI':>13}"]
    for (data, lib, method), g in runs.groupby(["data", "library", "method"], sort=False):
        sd = lambda col, g=g: g[col].std() if len(g) > 1 else 0.0
        cells = [f"{g[c].mean():.3f} ± {sd(c):.3f}" for c in ("acc", "nmi", "ari")]
        lines.append(f"{data:<10} {lib:<11} {method:<13} {len(g):>5} {g.seconds.mean():>7.1f} ± {sd('seconds'):<4.1f} "
                     f"{cells[0]:>13} {cells[1]:>13} {cells[2]:>13}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
