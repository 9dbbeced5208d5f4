"""Auto-checks for lab 11 (embedding space): pairwise Student-t affinities and the cross-entropy
between the affinities of the codes and those of the embedding.

Same contract as ``dclib.checks``: each check runs the learner's function on known cases,
prints ✓ or ✗ with a hint, and returns True/False. Lab: ``solutions/lab11_embedding.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from .checks import _close, _expect, _run

__all__ = ["check_pairwise_student_t", "check_embedding_cross_entropy", "brute_force_pairwise"]


def _points(n: int, d: int, seed: int, scale: float = 1.5, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, d, generator=g, dtype=torch.float64)).to(dtype)


def brute_force_pairwise(z, alpha: float) -> np.ndarray:
    """p_ij with explicit loops in numpy float64: k_ij = (1 + ‖z_i − z_j‖²/α)^(−(α+1)/2), p = k / Σ_{i≠j} k."""
    z = np.asarray(z, dtype=np.float64)
    n = len(z)
    kern = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                kern[i, j] = (1.0 + np.sum((z[i] - z[j]) ** 2) / alpha) ** (-(alpha + 1.0) / 2.0)
    return kern / kern.sum()


# ----------------------------------------------------------------------------- affinities


def _as_matrix(out, n: int) -> torch.Tensor:
    _expect(isinstance(out, torch.Tensor), f"return a torch tensor (so gradients can flow), got {type(out).__name__}.")
    _expect(tuple(out.shape) == (n, n), f"P must be (n, n) = ({n}, {n}), one entry per pair of points; got "
            f"{tuple(out.shape)}.")
    return out


def _affinity_hint(got: torch.Tensor, z: torch.Tensor, alpha: float) -> str:
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    eye = torch.eye(len(z), dtype=torch.bool)
    kern = (1 + d2 / alpha) ** (-(alpha + 1) / 2)
    off = kern.masked_fill(eye, 0)
    if _close(got, kern / kern.sum()):
        return "the diagonal is not excluded: a point is not its own neighbour, so set p_ii = 0 before normalising."
    if _close(got, off / off.sum(1, keepdim=True)):
        return "P is normalised row by row (t-SNE's conditional p_j|i); the joint P divides by the sum over *all* " \
               "pairs i ≠ j, so that the whole matrix sums to 1."
    for wrong, hint in [
        ((1 + d2 / alpha) ** (-alpha / 2), "the exponent is −(α+1)/2, not −α/2."),
        ((1 + d2) ** (-(alpha + 1) / 2), "divide the squared distance by α: (1 + ‖z_i − z_j‖²/α)."),
        ((1 + d2.sqrt() / alpha) ** (-(alpha + 1) / 2), "use the *squared* distance ‖z_i − z_j‖², not the distance."),
    ]:
        wrong = wrong.masked_fill(eye, 0)
        if _close(got, wrong / wrong.sum()):
            return hint
    return "wrong values — p_ij = k_ij / Σ_{k≠l} k_kl with k_ij = (1 + ‖z_i − z_j‖²/α)^(−(α+1)/2) and p_ii = 0."


def check_pairwise_student_t(fn: Callable) -> bool:
    """``fn(z, alpha) -> P`` (n, n): joint Student-t affinities, p_ii = 0, symmetric, summing to 1."""
    def shape_sum_symmetric():
        z = _points(6, 3, 0)
        P = _as_matrix(fn(z, 1.0), 6)
        _expect(bool(torch.isfinite(P).all()), "P has NaN/inf entries.")
        _expect(float(P.diagonal().abs().max()) < 1e-12, _affinity_hint(P, z, 1.0))
        _expect(abs(float(P.sum()) - 1.0) < 1e-9, f"P sums to {float(P.sum()):.4g}, not 1 — "
                + _affinity_hint(P, z, 1.0))
        _expect(_close(P, P.t()), "P must be symmetric (p_ij = p_ji): " + _affinity_hint(P, z, 1.0))

    def brute_force():
        for seed, (n, d, alpha) in enumerate([(7, 2, 1.0), (5, 4, 2.5), (9, 3, 20.0)]):
            z = _points(n, d, 10 + seed)
            P = _as_matrix(fn(z, alpha), n)
            _expect(_close(P, brute_force_pairwise(z, alpha), 1e-9),
                    f"(n={n}, α={alpha}) " + _affinity_hint(P, z, alpha))

    def far_apart_float32():
        z = torch.tensor([[0.0, 0.0], [1e4, 0.0], [0.0, 1e4], [1e4, 1e4], [2e3, 0.0]])
        P = _as_matrix(fn(z, 50.0), 5)
        _expect(bool(torch.isfinite(P).all()) and abs(float(P.sum()) - 1.0) < 1e-4,
                "far-apart points in float32 give NaN (0/0): the kernels underflow to 0. Work with log k_ij = "
                "−(α+1)/2 · log1p(d²/α), set the diagonal to −inf, and normalise with torch.logsumexp over all "
                "entries (or torch.softmax of the flattened matrix).")
        _expect(P.dtype == torch.float32, f"float32 input must give a float32 P, got {P.dtype}.")
        expected = torch.zeros(5, 5)
        expected[0, 4] = expected[4, 0] = 0.5  # the only close pair takes all the mass
        _expect(_close(P, expected, 1e-4), "the only close pair (points 0 and 4) must get p ≈ 0.5 each way.")

    def gradients():
        z = _points(6, 2, 3, dtype=torch.float32).requires_grad_()
        P = _as_matrix(fn(z, 1.0), 6)
        _expect(P.requires_grad, "P does not carry gradients — use torch operations only (no .numpy(), .detach(), "
                ".item() or torch.tensor(...) of a result).")
        (P * torch.arange(36.0).reshape(6, 6)).sum().backward()
        _expect(z.grad is not None and bool(torch.isfinite(z.grad).all()),
                "the gradient is NaN/inf: is the diagonal's log(0) or −inf entering a product? Use masked_fill "
                "on the log-kernel and exponentiate at the end.")

    return _run("check_pairwise_student_t", [("shape, sum, symmetry and zero diagonal", shape_sum_symmetric),
                                              ("brute force on random points", brute_force),
                                              ("far-apart points in float32 (log-space)", far_apart_float32),
                                              ("gradients", gradients)])


# ----------------------------------------------------------------------------- cross-entropy


def _scalar(fn: Callable, *args) -> torch.Tensor:
    out = fn(*args)
    _expect(isinstance(out, torch.Tensor), f"return a torch tensor (the loss to backpropagate), got "
            f"{type(out).__name__}.")
    _expect(out.dim() == 0, f"return one number (a 0-dim tensor), got shape {tuple(out.shape)} — sum over all pairs.")
    _expect(bool(torch.isfinite(out)), "the loss is NaN/inf: on the diagonal p_ii = 0 and log q_ii = log 0 = −inf, "
            "and 0·(−inf) = NaN — leave the pairs i = i out of the sum (a boolean mask of the off-diagonal).")
    return out


def _brute_ce(z, e, alpha_z: float, alpha_e: float) -> float:
    p, q = brute_force_pairwise(z, alpha_z), brute_force_pairwise(e, alpha_e)
    n = len(p)
    return -sum(p[i, j] * math.log(q[i, j]) for i in range(n) for j in range(n) if i != j)


def _ce_hint(got: float, z, e, alpha_z: float, alpha_e: float) -> str:
    d = z.shape[1]
    p, q = brute_force_pairwise(z, alpha_z), brute_force_pairwise(e, alpha_e)
    off = ~np.eye(len(p), dtype=bool)
    variants = {
        "the sign: the cross-entropy −Σ p log q is positive; return minus the sum.":
            float((p[off] * np.log(q[off])).sum()),
        "p and q are swapped: p comes from the codes z (the target), q from the embedding e.":
            -float((q[off] * np.log(p[off])).sum()),
        "that is the mean over pairs; the loss is the *sum* over all pairs i ≠ j (P already sums to 1).":
            -float((p[off] * np.log(q[off])).mean()),
        "that is KL(P‖Q) = Σ p log(p/q): it has the same gradient for e, but the task asks for the cross-entropy "
        "−Σ p log q.": float((p[off] * (np.log(p[off]) - np.log(q[off]))).sum()),
    }
    if alpha_z == 2.0 * d:
        for a, hint in [(float(d), "the default α_z is 2·dim(z), not dim(z)."),
                        (1.0, "α_z defaults to 2·dim(z) for the codes; α = 1 is for the embedding only.")]:
            variants[hint] = _brute_ce(z, e, a, alpha_e)
    for hint, value in variants.items():
        if abs(got - value) < 1e-6 * max(1.0, abs(value)):
            return hint
    return "wrong value — −Σ_{i≠j} p_ij log q_ij, p from z with α_z (default 2·dim(z)), q from e with α_e."


def check_embedding_cross_entropy(fn: Callable) -> bool:
    """``fn(z, e, alpha_z=None, alpha_e=1.0) -> loss``: −Σ_{i≠j} p_ij log q_ij, a 0-dim tensor.

    p: affinities of the codes z with α_z (None means 2·dim(z)); q: of the embedding e with α_e.
    """
    from .losses import embedding_cross_entropy

    def scalar_and_brute_force_default_alpha():
        for seed, (n, d, d_e) in enumerate([(6, 4, 2), (8, 3, 3), (5, 10, 2)]):
            z, e = _points(n, d, 20 + seed), _points(n, d_e, 40 + seed, scale=1.0)
            got = float(_scalar(fn, z, e))
            expected = _brute_ce(z, e, 2.0 * d, 1.0)
            _expect(abs(got - expected) < 1e-8 * max(1, abs(expected)), f"(n={n}, dim z={d}) got {got:.6f}, expected "
                    f"{expected:.6f} — {_ce_hint(got, z, e, 2.0 * d, 1.0)}")

    def explicit_alphas():
        z, e = _points(7, 3, 50), _points(7, 2, 51)
        got = float(_scalar(fn, z, e, 1.5, 3.0))
        expected = _brute_ce(z, e, 1.5, 3.0)
        _expect(abs(got - expected) < 1e-8 * max(1, abs(expected)), f"alpha_z=1.5, alpha_e=3: got {got:.6f}, expected "
                f"{expected:.6f} — use the alphas you are given for p and for q.")

    def gibbs_minimum():
        z = _points(8, 2, 60)
        p = brute_force_pairwise(z, 1.0)
        entropy = -float((p[p > 0] * np.log(p[p > 0])).sum())
        got = float(_scalar(fn, z, z.clone(), 1.0, 1.0))
        _expect(abs(got - entropy) < 1e-8, f"with e = z and the same α, q = p and −Σ p log p is the entropy of P "
                f"({entropy:.6f}); got {got:.6f}.")

    def gradient_matches():
        z = _points(9, 3, 70, dtype=torch.float32)
        e = _points(9, 2, 71, dtype=torch.float32).requires_grad_()
        loss = _scalar(fn, z, e)
        _expect(loss.requires_grad, "the loss does not carry gradients for e — is e detached, or is q computed "
                "with numpy / .item()? Use torch operations only.")
        mine = torch.autograd.grad(loss, e)[0]
        ref = torch.autograd.grad(embedding_cross_entropy(z, e), e)[0]
        _expect(mine.dtype == torch.float32, "float32 inputs must give a float32 loss.")
        _expect(_close(mine, ref, 1e-4), "the value is right but the gradient for e is not — is e detached, or "
                "is q computed without the torch graph?")

    return _run("check_embedding_cross_entropy", [("brute force, default alpha_z = 2·dim(z)",
                                                    scalar_and_brute_force_default_alpha),
                                                   ("explicit alphas", explicit_alphas),
                                                   ("q = p gives the entropy of P", gibbs_minimum),
                                                   ("gradient against the library (float32)", gradient_matches)])
