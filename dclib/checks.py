"""Auto-checks for the labs: each runs the learner's function on known cases and prints a clear
pass, or a hint saying what is wrong. Each returns True/False so tests can assert on it.

Labs: ``solutions/lab00_metrics.ipynb`` (ACC, NMI), ``solutions/lab02_dec.ipynb`` (DEC).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch

__all__ = [
    "check_cluster_acc",
    "check_nmi",
    "check_student_t_assignment",
    "check_target_distribution",
    "check_dec_gradients",
]


class CheckFailed(AssertionError):
    """A case failed; the message is the hint shown to the learner."""


def _expect(condition: bool, hint: str) -> None:
    if not condition:
        raise CheckFailed(hint)


def _run(name: str, cases: list[tuple[str, Callable[[], None]]]) -> bool:
    for label, case in cases:
        try:
            case()
        except NotImplementedError:
            print(f"✗ {name}: not implemented yet — replace the `raise` with your code.")
            return False
        except CheckFailed as fail:
            print(f"✗ {name} failed on {label}: {fail}")
            return False
        except Exception as err:  # the learner's code crashed: show what and where to look
            print(f"✗ {name} raised {type(err).__name__} on {label}: {err}")
            return False
    print(f"✓ {name} passed ({len(cases)} cases).")
    return True


def _close(a, b, tol: float = 1e-6) -> bool:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, dtype=float)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b, dtype=float)
    return a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- lab 00


def _brute_force_acc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    targets = list(classes) + [-1] * max(0, len(clusters) - len(classes))
    best = 0.0
    for perm in itertools.permutations(targets, len(clusters)):
        mapping = dict(zip(clusters, perm, strict=True))
        best = max(best, float(np.mean([mapping[p] == t for p, t in zip(y_pred, y_true, strict=True)])))
    return best


def check_cluster_acc(fn: Callable) -> bool:
    """``fn(y_true, y_pred) -> float``: the best one-to-one matching accuracy."""
    rng = np.random.default_rng(0)

    def perfect_but_renamed():
        _expect(abs(fn(np.array([0, 0, 1, 1, 2]), np.array([2, 2, 0, 0, 1])) - 1.0) < 1e-9,
                "renamed clusters must score 1.0 — match clusters to classes before counting.")

    def random_cases():
        for _ in range(6):
            y_true, y_pred = rng.integers(0, 4, 30), rng.integers(0, 4, 30)
            _expect(abs(fn(y_true, y_pred) - _brute_force_acc(y_true, y_pred)) < 1e-9,
                    "differs from trying every permutation — use linear_sum_assignment with maximize=True "
                    "on the (cluster x class) count table.")

    def more_clusters_than_classes():
        got = fn(np.array([0, 0, 1, 1]), np.array([0, 1, 2, 3]))
        _expect(abs(got - 0.5) < 1e-9, f"got {got} with 4 clusters and 2 classes, expected 0.5 — the table is "
                "rectangular; unmatched clusters count as errors.")

    def fewer_clusters_than_classes():
        got = fn(np.array([0, 1, 2, 2]), np.array([0, 0, 1, 1]))
        _expect(abs(got - 0.75) < 1e-9, f"got {got}, expected 0.75 with 2 clusters for 3 classes.")

    return _run("check_cluster_acc", [("renamed clusters", perfect_but_renamed), ("random labels", random_cases),
                                       ("4 clusters / 2 classes", more_clusters_than_classes),
                                       ("2 clusters / 3 classes", fewer_clusters_than_classes)])


def check_nmi(fn: Callable) -> bool:
    """``fn(y_true, y_pred) -> float``: I(Y; C) / ((H(Y) + H(C)) / 2)."""
    from sklearn.metrics import normalized_mutual_info_score

    rng = np.random.default_rng(1)

    def identical():
        _expect(abs(fn(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0])) - 1.0) < 1e-9,
                "identical partitions (up to renaming) must give 1.0.")

    def independent():
        got = fn(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
        _expect(abs(got) < 1e-9, f"got {got}; independent partitions share no information (NMI 0).")

    def random_cases():
        for _ in range(5):
            a, b = rng.integers(0, 3, 50), rng.integers(0, 5, 50)
            _expect(abs(fn(a, b) - normalized_mutual_info_score(a, b)) < 1e-6,
                    "differs from scikit-learn — use natural logs, the joint from the count table divided by n, "
                    "and the arithmetic mean of the two entropies.")

    return _run("check_nmi", [("identical partitions", identical), ("independent partitions", independent),
                               ("random labels", random_cases)])


# ----------------------------------------------------------------------------- lab 02 (DEC)


def _dec_problem(seed: int = 0, n: int = 12, k: int = 3, d: int = 2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), 2 * torch.randn(k, d, generator=g, dtype=torch.float64)


def check_student_t_assignment(fn: Callable) -> bool:
    """``fn(z, mu, alpha) -> q`` with q_ij ∝ (1 + ||z_i − μ_j||²/α)^(−(α+1)/2)."""
    from .losses import student_t_assignment

    def rows_sum_to_one():
        z, mu = _dec_problem()
        q = fn(z, mu, 1.0)
        _expect(tuple(q.shape) == (12, 3), f"q must be (n, k) = (12, 3), got {tuple(q.shape)}.")
        _expect(_close(q.sum(1), np.ones(12)), "each row of q must sum to 1 — normalise over the clusters (dim=1).")

    def matches_reference():
        for alpha in (1.0, 2.0, 10.0):
            z, mu = _dec_problem(int(alpha))
            _expect(_close(fn(z, mu, alpha), student_t_assignment(z, mu, alpha)),
                    f"wrong values for alpha={alpha} — the exponent is −(α+1)/2 and the distance is squared.")

    def far_points_are_finite():
        z = torch.tensor([[1e4, 1e4]], dtype=torch.float32)
        mu = torch.tensor([[0.0, 0.0], [1e4, 1e4 - 1]])
        q = fn(z, mu, 1.0)
        _expect(bool(torch.isfinite(q).all()), "q has NaN/inf for far points — normalise in log space (softmax).")

    return _run("check_student_t_assignment", [("row sums", rows_sum_to_one), ("reference values", matches_reference),
                                                ("far points", far_points_are_finite)])


def check_target_distribution(fn: Callable) -> bool:
    """``fn(q) -> p`` with p_ij = (q_ij²/f_j) / Σ_j'(q_ij'²/f_j'), f_j = Σ_i q_ij."""
    from .losses import target_distribution

    def by_hand():
        q = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]], dtype=torch.float64)
        w = q**2 / q.sum(0)
        _expect(_close(fn(q), w / w.sum(1, keepdim=True)),
                "wrong values on a 3x2 example — square q, divide by the column sums f_j, then renormalise rows.")

    def random_cases():
        z, mu = _dec_problem(3, n=20, k=4)
        from .losses import student_t_assignment
        q = student_t_assignment(z, mu)
        p = fn(q)
        _expect(_close(p.sum(1), np.ones(20)), "rows of p must sum to 1.")
        _expect(_close(p, target_distribution(q)), "values differ from the reference on a random q.")

    return _run("check_target_distribution", [("3x2 by hand", by_hand), ("random q", random_cases)])


def check_dec_gradients(fn: Callable) -> bool:
    """``fn(z, mu, p, alpha) -> (dL/dz, dL/dmu)`` for L = KL(P‖Q) summed over samples, P fixed."""
    from .losses import dec_loss, student_t_assignment, target_distribution

    def against_autograd():
        for alpha in (1.0, 2.0, 10.0):
            z, mu = _dec_problem(7 + int(alpha), n=10, k=3, d=4)
            z.requires_grad_(True)
            mu.requires_grad_(True)
            p = target_distribution(student_t_assignment(z, mu, alpha)).detach()
            auto_z, auto_mu = torch.autograd.grad(dec_loss(p, student_t_assignment(z, mu, alpha), "sum"), (z, mu))
            grad_z, grad_mu = fn(z.detach(), mu.detach(), p, alpha)
            _expect(tuple(grad_z.shape) == tuple(z.shape) and tuple(grad_mu.shape) == tuple(mu.shape),
                    "return (dL/dz with the shape of z, dL/dmu with the shape of mu).")
            rel_z = float((grad_z - auto_z).norm() / auto_z.norm())
            rel_mu = float((grad_mu - auto_mu).norm() / auto_mu.norm())
            _expect(rel_z < 1e-6, f"dL/dz has relative error {rel_z:.2e} for alpha={alpha} — check the (α+1)/α "
                    "factor and the kernel (1 + d²/α)^(−1).")
            _expect(rel_mu < 1e-6, f"dL/dmu has relative error {rel_mu:.2e} for alpha={alpha} — it is minus the "
                    "sum over samples i of the same terms.")

    return _run("check_dec_gradients", [("autograd, alpha in {1, 2, 10}", against_autograd)])
