"""Candidate levers on VaDE's accuracy, measured on the CPU (session 13: ``start``; session 14: augmented pretraining).

    python benchmarks/vade_levers.py long --seed 0 --lr 5e-4 --epochs 150 --out rows.csv
    python benchmarks/vade_levers.py augment --seed 0 --augment affine --out rows.csv
    python benchmarks/vade_levers.py pretrain --seed 0 --pretrain greedy --epochs 20 --out rows.csv
    python benchmarks/vade_levers.py start --seed 0 --start full --epochs 20 --out rows.csv
    python benchmarks/vade_levers.py vade-augment --data mnist-test --root DIR --pretrain-epochs 200 --out rows.csv
    python benchmarks/vade_levers.py curve --augment affine --pretrain-epochs 400 --every 50 --out rows.csv
    python benchmarks/vade_levers.py curve --data mnist --root DIR --pretrain-epochs 150 --every 25 --save CKPTS
    python benchmarks/vade_levers.py vade-augment --data mnist --root DIR --autoencoder CKPTS/mnist-affine-s0-e50.pt
    python benchmarks/vade_levers.py restarts --data mnist --root DIR --autoencoder CKPTS/a.pt,CKPTS/b.pt --restarts 20
    python benchmarks/vade_levers.py restarts --data mnist --root DIR --autoencoder A.pt --init k-means++ --sample 10000

VaDE ends close to the Gaussian mixture it starts from (lecture 04, section 8), so the places to look
for accuracy are the training itself and the autoencoder it starts from:

* ``long``: train the ELBO for longer (the paper trains 300 epochs at lr 2e-3) and record the ACC of
  VaDE's own labels after every epoch, from a 50-epoch autoencoder; does VaDE keep moving away from
  its start? Each row is one fit, with the ACC at epochs 10, 20, 50, 100 and the last.
* ``augment``: pretrain the autoencoder on randomly shifted and rotated digits (the augmentation of
  DEC-DA, Guo et al. 2018: ±10°, ±10 % shifts), reconstructing the augmented image, then score the
  start VaDE would get (a diagonal GMM, 5 restarts) and k-means (10 restarts) on the embedding.
* ``pretrain``: DEC's greedy layer-wise denoising pretraining (``--pretrain greedy``, squared error)
  against end-to-end training on the same squared error (``--pretrain end-to-end``), 50 epochs, then
  VaDE (20 ELBO epochs) from that autoencoder; its decoder's linear outputs become Bernoulli logits.
* ``vade-augment``: VaDE as the library fits it, pretrained on shifted and rotated digits
  (``pretrain_augment=True``) or not, from ``--start``; ``--data mnist-test --root DIR`` for the test set.
  A plain autoencoder trained longer overfits 5,000 digits (its clusters get worse); an augmented one
  keeps improving (session 14).
* ``curve``: VaDE's pretraining (BCE) with ``--augment affine`` or ``none``, scored every ``--every`` epochs up to
  ``--pretrain-epochs``: k-means, a full-covariance mixture and the start VaDE would take from it. ``--save DIR``
  keeps the weights at every checkpoint, and ``vade-augment --autoencoder FILE`` fits VaDE from one of them (no
  pretraining), so one long pretraining run gives VaDE at every budget along the curve (session 15, full MNIST).
  Its full mixture is scikit-learn's default (5 restarts, each from a k-means run), as in sessions 14-15, not the
  library's later k-means++-seeded start.
* ``restarts``: one full-covariance EM run per seed on each checkpoint's embedding, with its mean log-likelihood
  and ACC: how many of EM's optima there are, and whether the likelihood (no labels) picks the right one.
* ``start``: VaDE's ``mixture_start`` (``"gmm"``, the default, against ``"full"``: the diagonal moments of
  a full-covariance mixture's clusters), from the same 50-epoch autoencoder per seed (the disk cache),
  then 20 ELBO epochs; each row scores the start, VaDE's own labels and the full refit.

One thread per process, so that two processes can run side by side on the 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def vade_scores(model, y, nmi: bool = False) -> dict:
    """ACC (and NMI) of a fitted ``VaDE(final_mixture="full")``: at its start, on its own labels, after the refit."""
    from dclib.metrics import evaluate

    scores = {"start_acc": evaluate(y, model.initial_labels_)["acc"]}
    for name, labels in (("own", model.own_labels_), ("full_refit", model.labels_)):
        result = evaluate(y, labels)
        scores[f"{name}_acc"] = result["acc"]
        if nmi:
            scores[f"{name}_nmi"] = result["nmi"]
    return {key: round(value, 4) for key, value in scores.items()}


def long_training(args) -> dict:
    from dclib import VaDE, load_dataset
    from dclib.metrics import evaluate

    data = load_dataset(args.data)
    y = data.y.numpy()
    start = time.perf_counter()
    model = VaDE(data.n_clusters, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, lr=args.lr,
                 lr_decay=args.lr_decay, device="cpu", random_state=args.seed, final_mixture="full").fit(data.X, data.y)
    acc = model.history_["acc"]
    at = {f"acc_epoch{e}": round(acc[e - 1], 4) for e in (10, 20, 50, 100) if e <= len(acc)}
    return dict(seed=args.seed, lr=args.lr, lr_decay=args.lr_decay, pretrain_epochs=args.pretrain_epochs,
                epochs=args.epochs, start_acc=round(evaluate(y, model.initial_labels_)["acc"], 4), **at,
                own_acc=round(evaluate(y, model.own_labels_)["acc"], 4),
                full_refit_acc=round(evaluate(y, model.labels_)["acc"], 4),
                seconds=round(time.perf_counter() - start, 1))


def augmented_pretraining(args) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    from dclib import load_dataset
    from dclib.augment import random_affine
    from dclib.metrics import evaluate
    from dclib.models import MLPAutoencoder
    from dclib.train import embed, train
    from dclib.utils import make_generator, seed_everything

    data = load_dataset(args.data)
    X, y = data.X, data.y.numpy()
    seed_everything(args.seed)
    ae = MLPAutoencoder((784, 500, 500, 2000, 10))
    optimizer = torch.optim.Adam(ae.parameters(), lr=1e-3)
    augment_generator = torch.Generator().manual_seed(args.seed + 100)

    def step(idx: torch.Tensor) -> torch.Tensor:
        x = X[idx]
        if args.augment == "affine":
            x = random_affine(x, degrees=10, scale=(1, 1), shear=0, translate=0.1, generator=augment_generator)
        return F.binary_cross_entropy_with_logits(ae(x), x)  # VaDE's Bernoulli pretraining loss

    start = time.perf_counter()
    train(step, optimizer, len(X), epochs=args.pretrain_epochs, batch_size=256, device=torch.device("cpu"),
          generator=make_generator(args.seed, torch.device("cpu")), show_progress=False)
    seconds = time.perf_counter() - start
    ae.eval()
    Z = embed(ae.encode, X).numpy().astype(np.float64)
    kmeans = KMeans(data.n_clusters, n_init=10, random_state=args.seed).fit_predict(Z)
    gmm = GaussianMixture(data.n_clusters, covariance_type="diag", n_init=5, reg_covar=1e-4,
                          random_state=args.seed).fit(Z).predict(Z)
    return dict(seed=args.seed, augment=args.augment, pretrain_epochs=args.pretrain_epochs,
                kmeans_acc=round(evaluate(y, kmeans)["acc"], 4), gmm_start_acc=round(evaluate(y, gmm)["acc"], 4),
                seconds=round(seconds, 1))


def pretraining(args) -> dict:
    import torch

    from dclib import VaDE, load_dataset
    from dclib.models import MLPAutoencoder
    from dclib.train import pretrain_autoencoder
    from dclib.utils import make_generator, seed_everything

    data = load_dataset(args.data)
    y = data.y.numpy()
    seed_everything(args.seed)
    ae = MLPAutoencoder((784, 500, 500, 2000, 10))
    start = time.perf_counter()
    pretrain_autoencoder(ae, data.X, method=args.pretrain, epochs=args.pretrain_epochs, recon_loss="mse", seed=None,
                         generator=make_generator(args.seed, torch.device("cpu")), cache=False, show_progress=False)
    seconds = time.perf_counter() - start
    model = VaDE(data.n_clusters, autoencoder=ae, pretrain=None, epochs=args.epochs, device="cpu",
                 random_state=args.seed, final_mixture="full").fit(data.X, data.y)
    return dict(seed=args.seed, pretrain=args.pretrain, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs,
                **vade_scores(model, y), pretrain_seconds=round(seconds, 1))


def mixture_start(args) -> dict:
    from dclib import VaDE, load_dataset

    data = load_dataset(args.data)
    y = data.y.numpy()
    start = time.perf_counter()
    model = VaDE(data.n_clusters, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, device="cpu",
                 random_state=args.seed, mixture_start=args.start, final_mixture="full").fit(data.X, data.y)
    return dict(seed=args.seed, mixture_start=args.start, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs,
                **vade_scores(model, y), seconds=round(time.perf_counter() - start, 1))


def pretraining_curve(args) -> list[dict]:
    """Pretrain VaDE's autoencoder (BCE) with or without DEC-DA's augmentation and, every ``--every`` epochs,
    score k-means (10 restarts), a full-covariance mixture (5 restarts) and the diagonal start VaDE would take
    from it (``mixture_start="full"``) on the clean embedding: one row per checkpoint."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    from dclib import load_dataset
    from dclib.augment import SHIFT_ROTATE
    from dclib.methods.vade import _diagonal_mixture, _diagonal_moments
    from dclib.metrics import evaluate
    from dclib.models import MLPAutoencoder
    from dclib.train import embed, train
    from dclib.utils import make_generator, seed_everything

    data = load_dataset(args.data, root=args.root)
    X, y = data.X, data.y.numpy()
    seed_everything(args.seed)
    ae = MLPAutoencoder((X[0].numel(), 500, 500, 2000, 10))
    optimizer = torch.optim.Adam(ae.parameters(), lr=1e-3)

    def step(idx: torch.Tensor) -> torch.Tensor:
        x = X[idx] if args.augment == "none" else SHIFT_ROTATE(X[idx])
        return F.binary_cross_entropy_with_logits(ae(x), x)

    rows, start = [], time.perf_counter()

    def checkpoint(epoch: int, means: dict[str, float]) -> bool:
        if (epoch + 1) % args.every:
            return False
        ae.eval()
        Z = embed(ae.encode, X).numpy().astype(np.float64)
        ae.train()
        kmeans = KMeans(data.n_clusters, n_init=10, random_state=args.seed).fit_predict(Z)
        full = GaussianMixture(data.n_clusters, covariance_type="full", n_init=5, random_state=args.seed).fit(Z)
        diagonal = _diagonal_mixture(*_diagonal_moments(full.predict_proba(Z), Z, 1e-4)).predict(Z)
        rows.append(dict(data=args.data, seed=args.seed, augment=args.augment, epoch=epoch + 1,
                         kmeans_acc=round(evaluate(y, kmeans)["acc"], 4),
                         full_gmm_acc=round(evaluate(y, full.predict(Z))["acc"], 4),
                         full_start_acc=round(evaluate(y, diagonal)["acc"], 4), bce=round(means["loss"], 4),
                         seconds=round(time.perf_counter() - start, 1)))
        print(rows[-1], flush=True)
        if args.save:  # the weights at this checkpoint, for ``vade-augment --autoencoder``
            Path(args.save).mkdir(parents=True, exist_ok=True)
            torch.save(ae.state_dict(), Path(args.save) / f"{args.data}-{args.augment}-s{args.seed}-e{epoch + 1}.pt")
        return False

    train(step, optimizer, len(X), epochs=args.pretrain_epochs, batch_size=256, device=torch.device("cpu"),
          generator=make_generator(args.seed, torch.device("cpu")), after_epoch=checkpoint, show_progress=False)
    return rows


def load_checkpoint(path: str, n_features: int):
    """VaDE's autoencoder with the weights that ``curve --save`` wrote."""
    import torch

    from dclib.models import MLPAutoencoder

    ae = MLPAutoencoder((n_features, 500, 500, 2000, 10))
    ae.load_state_dict(torch.load(path, map_location="cpu"))
    return ae


def mixture_restarts(args) -> list[dict]:
    """One full-covariance EM run per ``--restarts`` seed and per ``--init`` on the embedding of each
    ``--autoencoder`` checkpoint: its mean log-likelihood (what ``n_init`` picks by, no labels) and its ACC on all
    samples, so that the start ``n_init`` restarts would give can be read off for any ``n_init``. ``--sample N``
    fits on N random samples (the log-likelihood is then the sample's), as the library's full start does."""
    import numpy as np
    from sklearn.mixture import GaussianMixture

    from dclib import load_dataset
    from dclib.metrics import evaluate
    from dclib.train import embed

    data = load_dataset(args.data, root=args.root)
    X, y = data.X, data.y.numpy()
    rows = []
    for path in args.autoencoder.split(","):
        ae = load_checkpoint(path, X[0].numel()).eval()
        Z = embed(ae.encode, X).numpy().astype(np.float64)
        fitted = Z if not args.sample else Z[np.random.default_rng(0).choice(len(Z), args.sample, replace=False)]
        for init in args.init.split(","):
            for restart in range(args.restarts):
                start = time.perf_counter()
                full = GaussianMixture(data.n_clusters, covariance_type="full", init_params=init, n_init=1,
                                       max_iter=args.max_iter, random_state=restart).fit(fitted)
                rows.append(dict(data=args.data, autoencoder=Path(path).name, init=init, sample=len(fitted),
                                 restart=restart, loglik=round(float(full.score(fitted)), 5),
                                 acc=round(evaluate(y, full.predict(Z))["acc"], 4), iterations=full.n_iter_,
                                 seconds=round(time.perf_counter() - start, 2)))
                print(rows[-1], flush=True)
    return rows


def augmented_vade(args) -> dict:
    """VaDE as the library fits it with ``pretrain_augment`` (or without), scored at the start, on its own
    labels and after the full refit; ``pretrain_seconds`` is the pretraining alone."""
    from dclib import VaDE, load_dataset

    data = load_dataset(args.data, root=args.root)
    y = data.y.numpy()
    given = {}
    if args.autoencoder:  # a checkpoint that ``curve --save`` wrote: VaDE starts from it, no pretraining
        given = dict(autoencoder=load_checkpoint(args.autoencoder, data.X[0].numel()), pretrain=None)
    start = time.perf_counter()
    model = VaDE(data.n_clusters, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, device="cpu",
                 random_state=args.seed, pretrain_augment=args.augment == "affine" and not given,
                 mixture_start=args.start, n_init=args.n_init, final_mixture="full", cache=False,
                 **given).fit(data.X, data.y)
    return dict(data=args.data, seed=args.seed, augment=args.augment, mixture_start=args.start, n_init=args.n_init,
                pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, **vade_scores(model, y, nmi=True),
                pretrain_seconds=round(model.pretrain_seconds_, 1), seconds=round(time.perf_counter() - start, 1),
                threads=args.threads, autoencoder=Path(args.autoencoder).name if given else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lever", choices=("long", "augment", "pretrain", "start", "vade-augment", "curve", "restarts"))
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--root", default=None, help="folder holding MNIST/raw/ (for mnist-test, mnist)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-epochs", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=150, help="long, pretrain: ELBO epochs")
    parser.add_argument("--lr", type=float, default=5e-4, help="long: VaDE's learning rate")
    parser.add_argument("--lr-decay", type=float, default=0.9, help="long: × every 10 epochs")
    parser.add_argument("--augment", choices=("none", "affine"), default="affine")
    parser.add_argument("--pretrain", choices=("greedy", "end-to-end"), default="greedy", help="pretrain: how")
    parser.add_argument("--start", choices=("gmm", "kmeans", "best", "full"), default="full",
                        help="start: VaDE's mixture_start")
    parser.add_argument("--every", type=int, default=50, help="curve: score the embedding every this many epochs")
    parser.add_argument("--save", default=None, help="curve: save the weights at every checkpoint in this folder")
    parser.add_argument("--autoencoder", default=None,
                        help="vade-augment: start from these weights (a file that curve --save wrote); "
                             "restarts: a comma-separated list of them")
    parser.add_argument("--n-init", type=int, default=5, help="vade-augment: VaDE's n_init (EM restarts at the start)")
    parser.add_argument("--restarts", type=int, default=20, help="restarts: EM runs per checkpoint and init")
    parser.add_argument("--init", default="kmeans", help="restarts: scikit-learn init_params, comma-separated")
    parser.add_argument("--sample", type=int, default=0, help="restarts: fit on this many random samples (0: all)")
    parser.add_argument("--max-iter", type=int, default=100, help="restarts: EM's max_iter")
    parser.add_argument("--out", default=None, help="append the row(s) to this CSV")
    args = parser.parse_args()

    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    levers = {"long": long_training, "augment": augmented_pretraining, "pretrain": pretraining, "start": mixture_start,
              "vade-augment": augmented_vade, "curve": pretraining_curve, "restarts": mixture_restarts}
    rows = levers[args.lever](args)
    if not isinstance(rows, list):  # (a curve prints its rows as it goes)
        print(rows, flush=True)
        rows = [rows]
    if args.out:
        out = Path(args.out)
        pd.DataFrame(rows).to_csv(out, mode="a", header=not out.exists(), index=False)


if __name__ == "__main__":
    main()
