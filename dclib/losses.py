"""Every loss of the course as a pure tensor function (no state, no side effects).

Each function names the notebook that derives it. All are written for numerical stability
(log-space normalisation with ``logsumexp``/``softmax``, never ``exp(x) + 1e-10``) and checked
against autograd, Monte Carlo or brute force in ``tests/test_losses_*.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "student_t_logits",
    "student_t_assignment",
    "target_distribution",
    "dec_loss",
    "dec_gradients",
    "reconstruction_loss",
]

_REDUCTIONS = ("sum", "mean", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")


def _pairwise_sq_dist(z: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    if z.dim() != 2 or mu.dim() != 2 or z.shape[1] != mu.shape[1]:
        raise ValueError(
            f"z must be (n, d) and mu (k, d) with the same d; got {tuple(z.shape)} and {tuple(mu.shape)}."
        )
    # Explicit differences (not the ||z||^2 - 2 z.mu + ||mu||^2 trick) keep d^2 >= 0 exactly.
    return (z.unsqueeze(1) - mu.unsqueeze(0)).pow(2).sum(-1)


def student_t_logits(z: torch.Tensor, mu: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Unnormalised log soft assignments ``-(alpha+1)/2 * log(1 + ||z_i - mu_j||^2 / alpha)``."""
    if alpha <= 0:
        raise ValueError(f"alpha (degrees of freedom) must be positive, got {alpha}.")
    return -(alpha + 1.0) / 2.0 * torch.log1p(_pairwise_sq_dist(z, mu) / alpha)


def student_t_assignment(z: torch.Tensor, mu: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """DEC's soft assignment q_ij ∝ (1 + ||z_i − μ_j||²/α)^(−(α+1)/2); each row sums to 1.

    A Student-t kernel (as in t-SNE) has heavy tails, so far points still get a usable gradient.
    Normalised with a softmax of the log-kernel. Derived in ``notebooks/02_dec_derivation.ipynb``.
    """
    return torch.softmax(student_t_logits(z, mu, alpha), dim=1)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's target p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j'), with f_j = Σ_i q_ij.

    Squaring sharpens the assignments and emphasises confident points; dividing by the soft
    cluster size f_j stops large clusters from swallowing the others. Compute it on the whole
    dataset (not per mini-batch) and hold it fixed between updates.
    Derived in ``notebooks/02_dec_derivation.ipynb``.
    """
    weight = q.pow(2) / q.sum(dim=0, keepdim=True)
    return weight / weight.sum(dim=1, keepdim=True)


def dec_loss(p: torch.Tensor, q: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """KL(P‖Q) = Σ_i Σ_j p_ij log(p_ij / q_ij).

    ``reduction="sum"`` is the paper's L (the double sum, whose gradients ``dec_gradients``
    gives); ``"mean"`` divides by the number of samples n (a per-sample KL, independent of the
    batch size, used for training); ``"none"`` returns the n per-sample KLs.
    Entries with p_ij = 0 contribute 0 (``xlogy``). Derived in ``notebooks/02_dec_derivation.ipynb``.
    """
    _check_reduction(reduction)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}.")
    q = q.clamp_min(torch.finfo(q.dtype).tiny)
    per_sample = (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=1)
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


def dec_gradients(
    z: torch.Tensor, mu: torch.Tensor, p: torch.Tensor, alpha: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The DEC paper's analytic gradients of ``dec_loss(p, q, "sum")`` with P held fixed.

    dL/dz_i = (α+1)/α Σ_j (1 + ||z_i − μ_j||²/α)^(−1) (p_ij − q_ij)(z_i − μ_j)
    dL/dμ_j = −(α+1)/α Σ_i (1 + ||z_i − μ_j||²/α)^(−1) (p_ij − q_ij)(z_i − μ_j)

    Derived line by line in ``notebooks/02_dec_derivation.ipynb``; tested against autograd.
    """
    diff = z.unsqueeze(1) - mu.unsqueeze(0)  # (n, k, d)
    kernel = 1.0 / (1.0 + diff.pow(2).sum(-1) / alpha)  # (n, k)
    q = student_t_assignment(z, mu, alpha)
    weight = (alpha + 1.0) / alpha * kernel * (p - q)  # (n, k)
    grad_z = torch.einsum("nk,nkd->nd", weight, diff)
    grad_mu = -torch.einsum("nk,nkd->kd", weight, diff)
    return grad_z, grad_mu


def reconstruction_loss(x_recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared reconstruction error (the autoencoders' and IDEC's L_rec)."""
    return F.mse_loss(x_recon.reshape(x.shape), x)
