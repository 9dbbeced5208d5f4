"""Auto-checks for lab 05 (IIC): the joint distribution of paired cluster assignments and the
mutual-information loss.

Same contract as ``dclib.checks``: each check runs the learner's function on known cases,
prints ✓ or ✗ with a hint, and returns True/False. Lab: ``solutions/lab05_iic.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .checks import _close, _expect, _run

__all__ = ["check_iic_joint", "check_iic_loss", "brute_force_mi"]


def _probs(n: int, C: int, seed: int, scale: float = 3.0, dtype=torch.float64) -> torch.Tensor:
    """Random soft assignments: (n, C) rows on the simplex, none of them exactly 0."""
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(n, C, generator=g, dtype=torch.float64), 1).to(dtype)


def _pair(n: int = 20, C: int = 4, seed: int = 0, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """An image batch and its augmented copy: the second view agrees with the first, with noise."""
    p = _probs(n, C, seed, dtype=dtype)
    noise = _probs(n, C, seed + 100, dtype=dtype)
    return p, (0.7 * p + 0.3 * noise)


def _onehot(labels, C: int) -> torch.Tensor:
    return F.one_hot(torch.as_tensor(labels), C).to(torch.float64)


def brute_force_mi(p, p_aug) -> tuple[float, np.ndarray]:
    """(I, P) with explicit loops over samples and cluster pairs, in numpy float64.

    P_cc' = 1/n Σ_i p_ic p'_ic', symmetrised; I = Σ_cc' P_cc' log(P_cc' / (P_c P_c')), empty cells
    contributing 0 (the limit of x log x at 0).
    """
    p, p_aug = np.asarray(p, dtype=np.float64), np.asarray(p_aug, dtype=np.float64)
    n, C = p.shape
    joint = np.zeros((C, C))
    for i in range(n):
        for a in range(C):
            for b in range(C):
                joint[a, b] += p[i, a] * p_aug[i, b] / n
    joint = (joint + joint.T) / 2
    row, col = joint.sum(1), joint.sum(0)
    mi = 0.0
    for a in range(C):
        for b in range(C):
            if joint[a, b] > 0:
                mi += joint[a, b] * math.log(joint[a, b] / (row[a] * col[b]))
    return mi, joint


# ----------------------------------------------------------------------------- the joint


def _as_joint(out, C: int) -> torch.Tensor:
    _expect(isinstance(out, torch.Tensor), f"return a torch tensor (so gradients can flow), got {type(out).__name__}.")
    shape = tuple(out.shape)
    if shape != (C, C) and len(shape) == 2 and shape[0] == shape[1]:
        _expect(False, f"P must be (C, C) = ({C}, {C}), got {shape}: p @ p_aug.T pairs *samples*; pair the "
                "clusters with p.T @ p_aug (a sum over the samples i).")
    _expect(shape == (C, C), f"P must be (C, C) = ({C}, {C}), got {shape} — P_cc' = 1/n Σ_i p_ic p'_ic' is "
            "p.T @ p_aug / n (an element-wise p * p_aug keeps only the diagonal).")
    return out


def _joint_hint(got: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> str:
    """Name the typical mistake that produced ``got`` (or a generic hint)."""
    n = len(p)
    raw = p.t() @ q
    if _close(got, raw / n):
        return "P is not symmetric: the pair (x, g x) and the pair (g x, x) are the same event, so average the " \
               "two directions, (P + P.T) / 2."
    if _close(got, (raw + raw.t()) / 2):
        return f"P sums to {float(got.sum()):.3g}, not 1: divide by the number of samples n (a mean over i)."
    if _close(got, raw):
        return f"P sums to {float(got.sum()):.3g} and is not symmetric: divide by n and symmetrise, " \
               "(P + P.T) / 2."
    if _close(got, p.t() @ p / n) or _close(got, q.t() @ q / n):
        return "P pairs a view with itself: it is p.T @ p_aug (the image with its augmentation), not p.T @ p."
    if _close(got, raw / raw.sum(0, keepdim=True)) or _close(got, raw / raw.sum(1, keepdim=True)):
        return "P is normalised per row/column (a conditional distribution); the *joint* divides by n only."
    return "wrong values — P_cc' = 1/n Σ_i p_ic p'_ic', then (P + P.T) / 2."


def check_iic_joint(fn: Callable) -> bool:
    """``fn(p, p_aug) -> P`` (C, C): P = 1/n Σ_i p_i p'_iᵀ, symmetrised (P + Pᵀ)/2, summing to 1."""
    def shape_sum_symmetric():
        p, q = _pair()
        P = _as_joint(fn(p, q), 4)
        _expect(abs(float(P.sum()) - 1.0) < 1e-9, _joint_hint(P, p, q))
        _expect(_close(P, P.t()), _joint_hint(P, p, q))
        _expect(bool((P >= 0).all()), "P has negative entries; it is a probability table.")

    def brute_force():
        for seed, (n, C) in enumerate([(20, 4), (7, 3), (33, 6)]):
            p, q = _pair(n, C, 10 + seed)
            P = _as_joint(fn(p, q), C)
            _, expected = brute_force_mi(p, q)
            _expect(_close(P, expected), f"(n={n}, C={C}) " + _joint_hint(P, p, q))

    def hard_assignments_count_pairs():
        a, b = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0])
        P = _as_joint(fn(_onehot(a, 3), _onehot(b, 3)), 3)
        counts = np.zeros((3, 3))
        np.add.at(counts, (a, b), 1)
        expected = (counts + counts.T) / 2 / len(a)
        _expect(_close(P, expected), "with one-hot assignments P must be the table of (cluster, cluster) pair "
                f"counts / n, symmetrised: expected {expected.round(3).tolist()}, got "
                f"{np.round(P.detach().cpu().numpy(), 3).tolist()}.")

    def float32_and_gradients():
        logits = torch.randn(12, 5, generator=torch.Generator().manual_seed(3), requires_grad=True)
        p = torch.softmax(logits, 1)
        P = _as_joint(fn(p, p.flip(0)), 5)
        _expect(P.dtype == torch.float32, f"float32 input must give a float32 P, got {P.dtype}.")
        _expect(P.requires_grad, "P does not carry gradients — use torch operations only (no .numpy(), "
                ".detach(), .item() or torch.tensor(...) of a result).")
        P.sum().backward()  # Σ P = 1 for every input, so each gradient component is the same constant
        _expect(logits.grad is not None and bool(torch.isfinite(logits.grad).all()),
                "the gradient through P is missing or not finite.")

    return _run("check_iic_joint", [("shape, sum and symmetry", shape_sum_symmetric),
                                     ("brute force on random soft assignments", brute_force),
                                     ("hard assignments (pair counts)", hard_assignments_count_pairs),
                                     ("float32 and gradients", float32_and_gradients)])


# ----------------------------------------------------------------------------- the loss


def _loss_variants(p: torch.Tensor, q: torch.Tensor, lamb: float) -> dict[str, float]:
    """What typical mistakes compute on (p, q) (no zeros in P here), keyed by their hint."""
    n = len(p)
    raw = p.t() @ q / n
    P = (raw + raw.t()) / 2
    row, col = P.sum(1, keepdim=True), P.sum(0, keepdim=True)

    def neg_mi(J, r, c):
        return float(-(J * (J.log() - lamb * r.log() - lamb * c.log())).sum())

    variants = {}
    if lamb != 1.0:
        variants["lamb is ignored: it must multiply both log-marginals, −Σ P (log P − λ log P_c − λ log P_c')."] = \
            float(-(P * (P.log() - row.log() - col.log())).sum())
    return variants | {
        "returns +I: the loss to *minimise* is −I (training maximises the information), so flip the sign.":
            -neg_mi(P, row, col),
        "the joint is not symmetrised: use (P + P.T) / 2 before taking the marginals and the logs.":
            neg_mi(raw, raw.sum(1, keepdim=True), raw.sum(0, keepdim=True)),
        "the joint is not divided by n: P must sum to 1 (a mean over the samples, not a sum).":
            neg_mi(P * n, (P * n).sum(1, keepdim=True), (P * n).sum(0, keepdim=True)),
        "the marginals must be those of the joint, P_c = Σ_c' P_cc' — not the marginals of one view alone.":
            neg_mi(P, p.mean(0)[:, None], p.mean(0)[None, :]),
        "lamb must multiply the log-marginals only: −Σ P (log P − λ log P_c − λ log P_c').":
            float(-(P * (lamb * P.log() - row.log() - col.log())).sum()),
        "that is −H(P), minus the entropy of the joint: the loss needs the log-marginals too, "
        "−Σ P (log P − log P_c − log P_c').":
            float((P * P.log()).sum()),
        "that is H(P), the entropy of the joint: are the marginals P.sum() (= 1, so log 1 = 0)? P_c sums over "
        "one axis only: P.sum(1, keepdim=True) (a column) and P.sum(0, keepdim=True) (a row).":
            float(-(P * P.log()).sum()),
    }


def _loss_value(fn: Callable, p: torch.Tensor, q: torch.Tensor, eps: float, lamb: float) -> torch.Tensor:
    out = fn(p, q, eps, lamb)
    _expect(isinstance(out, torch.Tensor), f"return a torch tensor (the loss to backpropagate), got "
            f"{type(out).__name__}.")
    _expect(out.dim() == 0, f"return one number (a 0-dim tensor), got shape {tuple(out.shape)} — sum over both "
            "cluster axes.")
    _expect(bool(torch.isfinite(out)), "the loss is NaN/inf: P has zero entries (clusters that are never paired) "
            "and log 0 = −inf, 0·(−inf) = NaN — clamp P to at least eps first (P.clamp_min(eps)).")
    return out


def _loss_hint(got: float, p: torch.Tensor, q: torch.Tensor, lamb: float) -> str:
    for hint, value in _loss_variants(p, q, lamb).items():
        if abs(got - value) < 1e-6 * max(1.0, abs(value)):
            return hint
    return "wrong value — loss = −Σ_cc' P_cc' (log P_cc' − λ log P_c − λ log P_c'), P the symmetrised joint."


def check_iic_loss(fn: Callable) -> bool:
    """``fn(p, p_aug, eps, lamb) -> loss``: −Σ_cc' P_cc' (log P_cc' − λ log P_c − λ log P_c'), a 0-dim tensor.

    With λ = 1 the loss is −I(z; z'); entries of P below ``eps`` are clamped so empty cells give no NaN.
    """
    from sklearn.metrics import mutual_info_score

    from .losses import iic_loss

    def scalar_and_sign():
        p, q = _pair()
        got = float(_loss_value(fn, p, q, 1e-12, 1.0))
        mi, _ = brute_force_mi(p, q)
        _expect(abs(got + mi) < 1e-6, f"got {got:.6f}, expected −I = {-mi:.6f} — {_loss_hint(got, p, q, 1.0)}")

    def brute_force():
        for seed, (n, C) in enumerate([(25, 3), (40, 5), (9, 7)]):
            p, q = _pair(n, C, 20 + seed)
            got = float(_loss_value(fn, p, q, 1e-12, 1.0))
            mi, _ = brute_force_mi(p, q)
            _expect(abs(got + mi) < 1e-6, f"(n={n}, C={C}) got {got:.6f}, expected −I = {-mi:.6f} — "
                    f"{_loss_hint(got, p, q, 1.0)}")

    def hard_assignments_sklearn():
        rng = np.random.default_rng(0)
        a = rng.integers(0, 4, 200)
        b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 4, 200))
        got = float(_loss_value(fn, _onehot(a, 4), _onehot(b, 4), 1e-12, 1.0))
        # the symmetrised joint counts each pair in both directions: (a, b) and (b, a)
        expected = mutual_info_score(np.concatenate([a, b]), np.concatenate([b, a]))
        _expect(abs(got + expected) < 1e-6, f"got {got:.6f}, expected −I = {-expected:.6f} from "
                "sklearn.metrics.mutual_info_score on the (symmetrised) hard pairs.")

    def perfect_and_collapsed():
        for C in (2, 5, 10):
            onehot = _onehot(np.arange(20 * C) % C, C)
            got = float(_loss_value(fn, onehot, onehot, 1e-8, 1.0))
            _expect(abs(got + math.log(C)) < 1e-4, f"balanced, confident, agreeing clusters (P = I/C) must give "
                    f"−log C = {-math.log(C):.4f} for C={C}, got {got:.4f}.")
        collapsed = _onehot(np.zeros(30, dtype=int), 4)
        got = float(_loss_value(fn, collapsed, collapsed, 1e-8, 1.0))
        _expect(abs(got) < 1e-4, f"everything in one cluster must give I = 0 (a loss of 0), got {got:.6f}.")
        constant = _probs(1, 4, 5).expand(30, 4)
        got = float(_loss_value(fn, constant, constant, 1e-12, 1.0))
        _expect(abs(got) < 1e-6, "assignments that ignore the image (the same row for every sample) make the two "
                f"views independent, P = m mᵀ, so I = 0; got a loss of {got:.6f}.")

    def zeros_float32_and_gradients():
        logits = torch.tensor([[60.0, -60.0, -60.0], [-60.0, 60.0, -60.0], [-60.0, 60.0, -60.0]],
                              requires_grad=True)
        p = torch.softmax(logits, 1)  # float32, entries that underflow to exactly 0
        loss = _loss_value(fn, p, p, 1e-8, 1.0)
        _expect(loss.requires_grad, "the loss does not carry gradients — use torch operations only (no .numpy(), "
                ".detach(), .item() or torch.tensor(...) of a result).")
        loss.backward()
        _expect(logits.grad is not None and bool(torch.isfinite(logits.grad).all()),
                "the gradient is NaN/inf where P has zeros — clamp P (P.clamp_min(eps)) before the log.")

    def gradient_matches():
        logits = torch.randn(15, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64,
                             requires_grad=True)
        noise = _probs(15, 4, 8)

        def views():  # a fresh graph for each of the two backward passes
            p = torch.softmax(logits, 1)
            return p, 0.8 * p + 0.2 * noise

        mine = torch.autograd.grad(_loss_value(fn, *views(), 1e-12, 1.0), logits)[0]
        ref = torch.autograd.grad(iic_loss(*views(), 1e-12, 1.0), logits)[0]
        _expect(_close(mine, ref), "the value is right but the gradient is not — is one of the two views "
                "detached? The gradient must flow through both p and p_aug.")

    def lamb_weighting():
        for lamb in (2.0, 1.5):
            p, q = _pair(30, 4, 30 + int(lamb))
            got = float(_loss_value(fn, p, q, 1e-12, lamb))
            expected = float(iic_loss(p, q, 1e-12, lamb))
            _expect(abs(got - expected) < 1e-6, f"lamb={lamb}: got {got:.6f}, expected {expected:.6f} — "
                    f"{_loss_hint(got, p, q, lamb)}")

    return _run("check_iic_loss", [("scalar and sign", scalar_and_sign),
                                    ("brute-force MI on random soft assignments", brute_force),
                                    ("hard assignments vs sklearn mutual_info_score", hard_assignments_sklearn),
                                    ("log C if perfect, 0 if collapsed or independent", perfect_and_collapsed),
                                    ("zero entries (float32) and gradients", zeros_float32_and_gradients),
                                    ("gradient against the library", gradient_matches),
                                    ("entropy weighting lamb", lamb_weighting)])
