"""Auto-checks for lab 10 (InfoGAN): the exact mutual information of a discrete toy and InfoGAN's
variational lower bound L_I = E[log Q(c|x)] + H(c).

Same contract as ``dclib.checks``: each check runs the learner's function on known cases,
prints ✓ or ✗ with a hint, and returns True/False. Lab: ``solutions/lab10_infogan.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .checks import _close, _expect, _run

__all__ = ["check_mutual_information", "check_info_lower_bound", "toy_counts", "toy_rows", "brute_force_mi_table"]


def toy_counts(seed: int = 0, k: int = 3, m: int = 4, n_per_code=(20, 20, 20)) -> np.ndarray:
    """Integer counts N[c, x] of a discrete toy: code c draws one of m 'images' x, n_per_code[c] times.

    Divided by their sum they are an exact joint p(c, x) whose rows, repeated N[c, x] times, make a
    dataset on which a sample mean is the exact expectation.
    """
    rng = np.random.default_rng(seed)
    counts = np.zeros((k, m), dtype=np.int64)
    for c in range(k):
        weights = rng.dirichlet(np.full(m, 0.7))
        counts[c] = rng.multinomial(n_per_code[c], weights)
    return counts


def brute_force_mi_table(joint) -> float:
    """I(c; x) = Σ p(c, x) log(p(c, x) / (p(c) p(x))) with explicit loops, empty cells giving 0."""
    joint = np.asarray(joint, dtype=np.float64)
    pc, px = joint.sum(1), joint.sum(0)
    return float(sum(joint[i, j] * math.log(joint[i, j] / (pc[i] * px[j]))
                     for i in range(joint.shape[0]) for j in range(joint.shape[1]) if joint[i, j] > 0))


def toy_rows(counts: np.ndarray, q: np.ndarray, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The toy as a dataset: (Q's logits log q[x] per row, the code c per row, the prior p(c))."""
    codes, xs = np.nonzero(counts)
    reps = counts[codes, xs]
    codes, xs = np.repeat(codes, reps), np.repeat(xs, reps)
    prior = counts.sum(1) / counts.sum()
    # log of 1e-300 for an impossible code: finite (so one-hot masks give 0, not 0 · −inf = NaN), exp gives 0
    return (torch.as_tensor(np.log(np.maximum(q[xs], 1e-300)), dtype=dtype), torch.as_tensor(codes),
            torch.as_tensor(prior, dtype=dtype))


def _posterior(counts: np.ndarray) -> np.ndarray:
    """p(c|x) as an (m, k) table (each row a distribution over codes)."""
    return (counts / counts.sum(0, keepdims=True)).T


def _random_q(m: int, k: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(100 + seed).normal(size=(m, k)) * 2
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# ----------------------------------------------------------------------------- exact MI


def _mi_hint(got: float, expected: float) -> str:
    if abs(got + expected) < 1e-9:
        return "the sign is flipped: mutual information is never negative."
    if abs(got - expected * math.log2(math.e)) < 1e-9:
        return "that is in bits (log2); the course uses nats (natural log)."
    return "wrong value — I = Σ_cx p(c, x) log(p(c, x) / (p(c) p(x))), empty cells contributing 0."


def check_mutual_information(fn: Callable) -> bool:
    """``fn(joint) -> float or 0-dim tensor``: I(c; x) of a (K, M) table p(c, x) summing to 1."""

    def value(joint) -> float:
        out = fn(torch.as_tensor(joint, dtype=torch.float64))
        _expect(isinstance(out, (float, int, np.floating, torch.Tensor)) and np.size(np.asarray(
            out.detach() if isinstance(out, torch.Tensor) else out)) == 1,
            f"return one number, got {type(out).__name__} {getattr(out, 'shape', '')} — sum over both axes.")
        got = float(out)
        _expect(math.isfinite(got), "the MI is NaN/inf: empty cells p(c, x) = 0 contribute 0 (the limit of "
                "p log p); skip them or use torch.xlogy.")
        return got

    def independent():
        joint = np.outer([0.2, 0.3, 0.5], [0.1, 0.6, 0.3])
        got = value(joint)
        _expect(abs(got) < 1e-9, f"p(c, x) = p(c) p(x) must give I = 0, got {got:.6f} — is it the entropy "
                "of the joint? The log must be of p(c, x) / (p(c) p(x)).")

    def deterministic():
        for k in (2, 4):
            got = value(np.eye(k) / k)
            _expect(abs(got - math.log(k)) < 1e-9, f"x = c with uniform c must give I = H(c) = log {k} = "
                    f"{math.log(k):.4f}, got {got:.4f}: {_mi_hint(got, math.log(k))}")

    def brute_force():
        for seed in range(3):
            counts = toy_counts(seed)
            joint = counts / counts.sum()
            got, expected = value(joint), brute_force_mi_table(joint)
            _expect(abs(got - expected) < 1e-9, f"(seed {seed}) got {got:.6f}, expected {expected:.6f}: "
                    f"{_mi_hint(got, expected)}")

    return _run("check_mutual_information", [("independent code and image", independent),
                                             ("deterministic image x = c", deterministic),
                                             ("random toys (brute force)", brute_force)])


# ----------------------------------------------------------------------------- the bound


def _bound_variants(logits: torch.Tensor, codes: torch.Tensor, prior: torch.Tensor) -> dict[str, float]:
    """What typical mistakes compute, keyed by their hint."""
    log_q = torch.log_softmax(logits, 1)
    picked = log_q.gather(1, codes[:, None]).squeeze(1)
    h = float(-(prior * prior.log()).sum())
    k = logits.shape[1]
    return {
        "H(c) is missing: E[log Q(c|x)] alone is −H(c|x) under Q, the bound adds the entropy of the prior, "
        "H(c) = −Σ_c p(c) log p(c).": float(picked.mean()),
        "the sign is flipped: L_I = E[log Q(c|x)] + H(c) is a lower bound on I (maximised), not a loss.":
            -(float(picked.mean()) + h),
        "H(c) must be the entropy of the given prior, −Σ p(c) log p(c), not log K (the codes are not "
        "uniform here).": float(picked.mean()) + math.log(k),
        "E[log Q(c|x)] is a mean over the samples, not a sum.": float(picked.sum()) + h,
        "Q(c|x) is a probability: take the log (log_softmax of the logits), not softmax.":
            float(torch.softmax(logits, 1).gather(1, codes[:, None]).mean()) + h,
        "pick the log-probability of the code c_i that generated x_i (gather with the codes), not the "
        "most likely code.": float(log_q.max(1).values.mean()) + h,
        "average over the codes of each row is not the bound: pick log Q(c_i|x_i) for the code that made x_i.":
            float(log_q.mean()) + h,
    }


def _bound_hint(got: float, logits, codes, prior) -> str:
    for hint, value in _bound_variants(logits, codes, prior).items():
        if abs(got - value) < 1e-6 * max(1.0, abs(value)):
            return hint
    return "wrong value — L_I = mean_i log Q(c_i|x_i) + H(c), Q(·|x) = softmax of the logits."


def _bound_value(fn: Callable, logits, codes, prior) -> torch.Tensor:
    out = fn(logits, codes, prior)
    _expect(isinstance(out, torch.Tensor), f"return a torch tensor (so gradients reach Q and G), got "
            f"{type(out).__name__}.")
    _expect(out.dim() == 0, f"return one number (a 0-dim tensor), got shape {tuple(out.shape)} — average over "
            "the samples.")
    _expect(bool(torch.isfinite(out)), "the bound is NaN/inf: compute log Q with log_softmax (never "
            "log(softmax(...)), which gives log 0 = −inf when a probability underflows).")
    return out


def check_info_lower_bound(fn: Callable) -> bool:
    """``fn(q_logits, codes, prior) -> L_I``: mean_i log softmax(q_logits)_i[c_i] − Σ_c p(c) log p(c)."""

    def tight_at_posterior():
        for seed in range(3):
            counts = toy_counts(seed)
            logits, codes, prior = toy_rows(counts, _posterior(counts))
            got = float(_bound_value(fn, logits, codes, prior))
            mi = brute_force_mi_table(counts / counts.sum())
            _expect(abs(got - mi) < 1e-9, f"(seed {seed}) with Q = the true posterior p(c|x) the bound is tight: "
                    f"expected I = {mi:.6f}, got {got:.6f} — {_bound_hint(got, logits, codes, prior)}")

    def below_mi_gap_is_kl():
        for seed in range(3):
            counts = toy_counts(seed)
            joint = counts / counts.sum()
            q = _random_q(counts.shape[1], counts.shape[0], seed)
            logits, codes, prior = toy_rows(counts, q)
            got = float(_bound_value(fn, logits, codes, prior))
            mi = brute_force_mi_table(joint)
            post, px = _posterior(counts), joint.sum(0)
            kl = sum(px[j] * post[j, c] * math.log(post[j, c] / q[j, c])
                     for j in range(len(px)) for c in range(joint.shape[0]) if post[j, c] > 0)
            _expect(got <= mi + 1e-12, f"(seed {seed}) the bound {got:.6f} exceeds the true MI {mi:.6f} — "
                    f"{_bound_hint(got, logits, codes, prior)}")
            _expect(abs((mi - got) - kl) < 1e-9, f"(seed {seed}) the gap I − L_I must be E_x KL(p(c|x) ‖ Q(c|x)) "
                    f"= {kl:.6f}, got {mi - got:.6f} — {_bound_hint(got, logits, codes, prior)}")

    def non_uniform_prior():
        counts = toy_counts(4, n_per_code=(36, 18, 6))
        logits, codes, prior = toy_rows(counts, _random_q(counts.shape[1], 3, 4))
        got = float(_bound_value(fn, logits, codes, prior))
        expected = float(torch.log_softmax(logits, 1).gather(1, codes[:, None]).mean() - (prior * prior.log()).sum())
        _expect(abs(got - expected) < 1e-9, f"prior {np.round(prior.numpy(), 2).tolist()}: expected {expected:.6f}, "
                f"got {got:.6f} — {_bound_hint(got, logits, codes, prior)}")

    def logits_not_probabilities():
        counts = toy_counts(5)
        logits, codes, prior = toy_rows(counts, _random_q(counts.shape[1], 3, 5))
        shifted = logits * 1.0 + torch.arange(len(logits), dtype=logits.dtype)[:, None]  # same softmax per row
        a, b = float(_bound_value(fn, logits, codes, prior)), float(_bound_value(fn, shifted, codes, prior))
        _expect(abs(a - b) < 1e-9, "adding a constant to a row of logits must not change Q(c|x): normalise the "
                "logits with log_softmax before picking log Q(c|x).")

    def float32_and_gradient():
        g = torch.Generator().manual_seed(0)
        logits = (3 * torch.randn(16, 5, generator=g)).requires_grad_(True)
        codes = torch.randint(5, (16,), generator=g)
        prior = torch.full((5,), 0.2)
        out = _bound_value(fn, logits, codes, prior)
        _expect(out.dtype == torch.float32, f"float32 input must give a float32 bound, got {out.dtype}.")
        _expect(out.requires_grad, "the bound carries no gradient — use torch operations only (no .numpy(), "
                ".item() or torch.tensor(...) of a result).")
        (grad,) = torch.autograd.grad(out, logits)
        expected = (F.one_hot(codes, 5) - torch.softmax(logits.detach(), 1)) / 16
        _expect(_close(grad, expected, 1e-5), "the gradient with respect to the logits must be "
                "(onehot(c_i) − Q(·|x_i)) / n — is the code picked per row and the mean taken over rows?")

    return _run("check_info_lower_bound", [("tight at the true posterior", tight_at_posterior),
                                           ("below the MI, gap = expected KL", below_mi_gap_is_kl),
                                           ("non-uniform prior", non_uniform_prior),
                                           ("logits, not probabilities", logits_not_probabilities),
                                           ("float32 and gradient", float32_and_gradient)])
