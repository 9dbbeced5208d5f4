"""Every loss of the course as a pure tensor function (no state, no side effects).

Each function names the notebook that derives it. All are written for numerical stability
(log-space normalisation with ``logsumexp``/``softmax``, never ``exp(x) + 1e-10``) and checked
against autograd, Monte Carlo or brute force in ``tests/test_losses_*.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "student_t_logits",
    "student_t_assignment",
    "target_distribution",
    "dec_loss",
    "dec_gradients",
    "reconstruction_loss",
    "gaussian_log_density",
    "vade_responsibilities",
    "vade_elbo",
    "iic_joint",
    "iic_loss",
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


# ----------------------------------------------------------------------------- VaDE


LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(z: torch.Tensor, mu_c: torch.Tensor, logvar_c: torch.Tensor) -> torch.Tensor:
    """log N(z_i; μ_c, diag σ_c²) for every sample i and component c, shape (n, C)."""
    if z.dim() != 2 or mu_c.shape != logvar_c.shape or mu_c.shape[1] != z.shape[1]:
        raise ValueError(
            f"z must be (n, d) and mu_c, logvar_c both (C, d); got {tuple(z.shape)}, {tuple(mu_c.shape)}, "
            f"{tuple(logvar_c.shape)}."
        )
    diff2 = (z.unsqueeze(1) - mu_c.unsqueeze(0)).pow(2)  # (n, C, d)
    return -0.5 * (LOG_2PI + logvar_c.unsqueeze(0) + diff2 * torch.exp(-logvar_c).unsqueeze(0)).sum(-1)


def _log_pi(pi: torch.Tensor) -> torch.Tensor:
    if pi.dim() != 1:
        raise ValueError(f"pi must be a vector of C mixture weights, got shape {tuple(pi.shape)}.")
    return torch.log(pi.clamp_min(torch.finfo(pi.dtype).tiny))


def vade_responsibilities(
    z: torch.Tensor, pi: torch.Tensor, mu_c: torch.Tensor, logvar_c: torch.Tensor
) -> torch.Tensor:
    """γ_ic = p(c | z_i) = π_c N(z_i; μ_c, σ_c²) / Σ_c' π_c' N(z_i; μ_c', σ_c'²); rows sum to 1.

    Computed in log space (a softmax of log π_c + log N), so far-away points give a valid
    one-hot row instead of 0/0. Derived in ``notebooks/04_vade_elbo.ipynb``.
    """
    return torch.exp(_log_responsibilities(z, pi, mu_c, logvar_c))


def _log_responsibilities(z, pi, mu_c, logvar_c) -> torch.Tensor:
    return torch.log_softmax(_log_pi(pi).unsqueeze(0) + gaussian_log_density(z, mu_c, logvar_c), dim=1)


def vade_elbo(
    x: torch.Tensor,
    x_recon: torch.Tensor,
    z_mean: torch.Tensor,
    z_logvar: torch.Tensor,
    pi: torch.Tensor,
    mu_c: torch.Tensor,
    logvar_c: torch.Tensor,
    likelihood: str = "bernoulli",
    z: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """VaDE's evidence lower bound in closed form, per sample and as a mean, with its terms.

    With q(z, c | x) = N(z; μ̃, σ̃²) γ_c, the ELBO splits into (all per sample, in nats)::

        reconstruction   log p(x | x_recon)             (Bernoulli: x_recon are logits;
                                                         Gaussian: unit variance, x_recon the mean)
        log_p_z_given_c  Σ_c γ_c E_q[log N(z; μ_c, σ_c²)]
                         = −½ Σ_c γ_c Σ_j [log 2π + log σ_cj² + (σ̃_j² + (μ̃_j − μ_cj)²) / σ_cj²]
        log_p_c          Σ_c γ_c log π_c
        entropy_z        −E_q[log q(z|x)] = ½ Σ_j (1 + log 2π + log σ̃_j²)
        entropy_c        −Σ_c γ_c log γ_c

    γ = p(c | z), the optimal q(c | x), taken at ``z`` (a reparameterised sample, as in the paper)
    or at ``z_mean`` when ``z`` is None. Returns a dict with ``elbo`` (mean over samples),
    ``per_sample`` (n,), ``gamma`` and the mean of each term. Derived in ``notebooks/04_vade_elbo.ipynb``.
    """
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}.")
    n = len(x)
    x_flat, recon_flat = x.reshape(n, -1), x_recon.reshape(n, -1)
    if x_flat.shape != recon_flat.shape:
        raise ValueError(f"x and x_recon must have the same size, got {tuple(x.shape)} and {tuple(x_recon.shape)}.")
    if likelihood == "bernoulli":
        reconstruction = -F.binary_cross_entropy_with_logits(recon_flat, x_flat, reduction="none").sum(1)
    else:
        reconstruction = -0.5 * ((x_flat - recon_flat).pow(2) + LOG_2PI).sum(1)

    log_gamma = _log_responsibilities(z_mean if z is None else z, pi, mu_c, logvar_c)  # (n, C)
    gamma = torch.exp(log_gamma)
    var_ratio = torch.exp(z_logvar.unsqueeze(1) - logvar_c.unsqueeze(0))  # σ̃²/σ_c², (n, C, d)
    mahalanobis = (z_mean.unsqueeze(1) - mu_c.unsqueeze(0)).pow(2) * torch.exp(-logvar_c).unsqueeze(0)
    expected_log_n = -0.5 * (LOG_2PI + logvar_c.unsqueeze(0) + var_ratio + mahalanobis).sum(-1)  # (n, C)
    log_p_z_given_c = (gamma * expected_log_n).sum(1)
    log_p_c = (gamma * _log_pi(pi).unsqueeze(0)).sum(1)
    entropy_z = 0.5 * (1.0 + LOG_2PI + z_logvar).sum(1)
    entropy_c = -(gamma * log_gamma).sum(1)  # finite gradients even where γ underflows to 0
    per_sample = reconstruction + log_p_z_given_c + log_p_c + entropy_z + entropy_c
    return {
        "elbo": per_sample.mean(),
        "per_sample": per_sample,
        "gamma": gamma,
        "reconstruction": reconstruction.mean(),
        "log_p_z_given_c": log_p_z_given_c.mean(),
        "log_p_c": log_p_c.mean(),
        "entropy_z": entropy_z.mean(),
        "entropy_c": entropy_c.mean(),
    }


# ----------------------------------------------------------------------------- IIC


def iic_joint(p: torch.Tensor, p_aug: torch.Tensor) -> torch.Tensor:
    """IIC's joint P = 1/n Σ_i Φ(x_i) Φ(g x_i)ᵀ, symmetrised (P + Pᵀ)/2: a C×C matrix summing to 1.

    ``p`` and ``p_aug`` are (n, C) softmax outputs for images and their augmented copies.
    Derived in ``notebooks/05_iic_mutual_information.ipynb``.
    """
    if p.shape != p_aug.shape or p.dim() != 2:
        raise ValueError(f"p and p_aug must both be (n, C), got {tuple(p.shape)} and {tuple(p_aug.shape)}.")
    joint = p.t() @ p_aug / len(p)
    return (joint + joint.t()) / 2


def iic_loss(p: torch.Tensor, p_aug: torch.Tensor, eps: float = 1e-8, lamb: float = 1.0) -> torch.Tensor:
    """−I(z; z') = −Σ_cc' P_cc' log(P_cc' / (P_c P_c')) for the joint of ``iic_joint``.

    ``lamb`` > 1 weights the marginal entropies more (the paper's entropy weighting:
    −Σ P (log P − λ log P_c − λ log P_c')), pushing harder against collapse. Entries of P below
    ``eps`` are clamped so empty cells give no NaN. Maximising I = H(z) − H(z|z') rewards
    confident *and* balanced clusters: one cluster for everything has I = 0.
    """
    joint = iic_joint(p, p_aug).clamp_min(eps)
    p_row = joint.sum(dim=1, keepdim=True)
    p_col = joint.sum(dim=0, keepdim=True)
    return -(joint * (joint.log() - lamb * p_row.log() - lamb * p_col.log())).sum()
