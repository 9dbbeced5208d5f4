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


# ----------------------------------------------------------------------------- DCN and the taxonomy

__all__ += [  # this section's exports
    "kmeans_assignment",
    "kmeans_loss",
    "balanced_assignment_loss",
    "group_sparsity_loss",
    "cluster_classification_loss",
]


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    _check_reduction(reduction)
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


def kmeans_assignment(z: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """DCN's hard assignment s_i = argmin_k ‖z_i − μ_k‖², as cluster indices of shape (n,).

    Ties go to the lowest index. Derived in ``notebooks/06_dcn_kmeans_loss.ipynb``.
    """
    return _pairwise_sq_dist(z, centers).argmin(dim=1)


def kmeans_loss(
    z: torch.Tensor, centers: torch.Tensor, assignments: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """DCN's k-means term ½‖z_i − M s_i‖², where M = [μ_1 … μ_K] holds the centroids as columns.

    ``assignments`` is either the cluster index of each sample, shape (n,) (s_i one-hot), or an
    (n, K) matrix whose rows are the s_i (then M s_i = Σ_k s_ik μ_k, taken literally).
    The per-sample term is ½ Σ_d (z_id − (M s_i)_d)², a *sum* over the embedding coordinates;
    ``reduction="mean"`` (the default, used for training) averages it over the batch, ``"sum"``
    adds it over the batch (the paper's Σ_i), ``"none"`` returns the n per-sample terms.
    Gradients reach ``z`` and ``centers``; DCN detaches the centers and updates them by a running
    mean instead. Derived in ``notebooks/06_dcn_kmeans_loss.ipynb``.
    """
    if z.dim() != 2 or centers.dim() != 2 or z.shape[1] != centers.shape[1]:
        raise ValueError(
            f"z must be (n, d) and centers (K, d) with the same d; got {tuple(z.shape)} and {tuple(centers.shape)}."
        )
    if assignments.dim() == 1 and not assignments.dtype.is_floating_point:
        if assignments.shape[0] != z.shape[0]:
            raise ValueError(f"assignments must hold one index per sample: got {assignments.shape[0]} for {len(z)}.")
        target = centers[assignments]
    elif assignments.dim() == 2 and assignments.shape == (z.shape[0], centers.shape[0]):
        target = assignments.to(centers.dtype) @ centers
    else:
        raise ValueError(
            f"assignments must be (n,) cluster indices or an (n, K) matrix; got {tuple(assignments.shape)} "
            f"({assignments.dtype}) for n={len(z)}, K={len(centers)}."
        )
    per_sample = 0.5 * (z - target).pow(2).sum(dim=1)
    return _reduce(per_sample, reduction)


def balanced_assignment_loss(q: torch.Tensor) -> torch.Tensor:
    """KL(f ‖ u) = Σ_j f_j log(f_j / (1/K)) with f_j = 1/n Σ_i q_ij and u the uniform distribution.

    ``q`` is an (n, K) matrix of soft assignments (rows sum to 1); f is the cluster distribution
    the batch induces. The loss is 0 exactly when the clusters are used equally and log K when
    every point goes to one cluster, so adding it to a clustering loss fights the collapse to a
    few big clusters (the taxonomy's "balanced assignments loss"). Empty clusters (f_j = 0)
    contribute 0. Derived in ``notebooks/07_taxonomy.ipynb``.
    """
    if q.dim() != 2:
        raise ValueError(f"q must be an (n, K) matrix of soft assignments, got shape {tuple(q.shape)}.")
    f = q.mean(dim=0)
    return torch.xlogy(f, f).sum() + math.log(q.shape[1])


def group_sparsity_loss(
    z: torch.Tensor, n_clusters: int, groups: torch.Tensor | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """The taxonomy's group-sparsity loss: Σ_g √n_g ‖z_i^(g)‖₂, summed over the G = ``n_clusters`` groups.

    As described by Aljalbout et al. (2018) after Yang et al. (2016), the *coordinates* (hidden
    units) of the embedding z_i ∈ R^d are split into G groups, one per assumed cluster; z_i^(g)
    is the sub-vector of group g and n_g its number of coordinates. The per-sample penalty is the
    group lasso Σ_g λ_g ‖z_i^(g)‖₂ with λ_g = √n_g (the survey's λ_g = λ√n_g with λ = 1; multiply
    the result by λ). Because a Euclidean norm is not squared, whole groups are driven to exactly
    zero, so each point ends up using few groups, and the group it uses is its cluster
    (block-diagonal structure, as in spectral clustering).

    ``groups`` is an optional (d,) integer tensor giving each coordinate's group in [0, G); by
    default the d coordinates are cut into G contiguous groups of nearly equal size
    (``torch.tensor_split``; requires d ≥ G). ``reduction`` as in ``kmeans_loss``: ``"mean"`` over
    the batch of the per-sample sum over groups (default), ``"sum"``, or ``"none"``. The norm is
    not differentiable where a whole group is exactly 0 (autograd then returns a zero
    subgradient). Derived in ``notebooks/07_taxonomy.ipynb``.
    """
    if z.dim() != 2:
        raise ValueError(f"z must be (n, d), got shape {tuple(z.shape)}.")
    n, d = z.shape
    if not isinstance(n_clusters, int) or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters!r}.")
    if groups is None:
        if d < n_clusters:
            raise ValueError(f"cannot split d={d} embedding coordinates into {n_clusters} non-empty groups.")
        chunks = torch.arange(d, device=z.device).tensor_split(n_clusters)
        groups = torch.cat([torch.full_like(chunk, g) for g, chunk in enumerate(chunks)])
    elif groups.shape != (d,) or groups.dtype.is_floating_point:
        raise ValueError(f"groups must be a ({d},) integer tensor of group indices, got {tuple(groups.shape)}.")
    member = F.one_hot(groups.to(z.device), n_clusters).t().to(z.dtype)  # (G, d): coordinate j in group g
    norms = torch.linalg.vector_norm(z.unsqueeze(1) * member, dim=2)  # (n, G): ‖z_i^(g)‖₂
    per_sample = (member.sum(dim=1).sqrt() * norms).sum(dim=1)
    return _reduce(per_sample, reduction)


def cluster_classification_loss(
    logits: torch.Tensor, pseudo_labels: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy of a cluster head on pseudo-labels: −Σ_i log softmax(logits_i)[ŷ_i].

    The taxonomy's "cluster classification loss": cluster assignments from a clustering step are
    treated as class labels for a classifier (as in DeepCluster). ``pseudo_labels`` is either
    (n,) integer labels or an (n, K) matrix of target probabilities (soft pseudo-labels, e.g. a
    detached q), in which case the loss is −Σ_k t_ik log softmax(logits_i)_k. ``reduction`` as in
    ``kmeans_loss``. Computed with ``log_softmax`` (stable for large logits).
    Derived in ``notebooks/07_taxonomy.ipynb``.
    """
    _check_reduction(reduction)
    if logits.dim() != 2:
        raise ValueError(f"logits must be (n, K), got shape {tuple(logits.shape)}.")
    if pseudo_labels.shape not in ((len(logits),), tuple(logits.shape)):
        raise ValueError(
            f"pseudo_labels must be (n,) labels or (n, K) probabilities matching logits {tuple(logits.shape)}, "
            f"got {tuple(pseudo_labels.shape)}."
        )
    return F.cross_entropy(logits, pseudo_labels, reduction=reduction)


# ----------------------------------------------------------------------------- IMSAT, DAC, DEPICT

__all__ += [  # this section's exports
    "marginal_entropy",
    "conditional_entropy",
    "vat_direction",
    "vat_loss",
    "dac_similarity",
    "dac_thresholds",
    "dac_pair_labels",
    "dac_loss",
    "depict_target",
]


def _check_probs(p: torch.Tensor, log_p: torch.Tensor | None) -> None:
    if p.dim() != 2:
        raise ValueError(f"p must be an (n, K) matrix of cluster probabilities, got shape {tuple(p.shape)}.")
    if log_p is not None and log_p.shape != p.shape:
        raise ValueError(f"log_p must have the shape of p {tuple(p.shape)}, got {tuple(log_p.shape)}.")


def marginal_entropy(p: torch.Tensor, log_p: torch.Tensor | None = None) -> torch.Tensor:
    """H(Y) = −Σ_k p̄_k log p̄_k with p̄ = 1/n Σ_i p_i, the entropy of the cluster sizes.

    Maximal (log K) when the clusters are used equally, 0 when every point goes to one cluster:
    IMSAT maximises it against the collapse. Pass ``log_p = log_softmax(logits)`` when training:
    log p̄ is then ``logsumexp(log_p) − log n``, finite with finite gradients even where a
    cluster's probability underflows to 0 in the whole batch. Derived in
    ``notebooks/08_discriminative_methods.ipynb``.
    """
    _check_probs(p, log_p)
    if log_p is None:
        p_mean = p.mean(dim=0)
        return -torch.xlogy(p_mean, p_mean).sum()
    log_mean = torch.logsumexp(log_p, dim=0) - math.log(len(log_p))
    return -(log_mean.exp() * log_mean).sum()


def conditional_entropy(p: torch.Tensor, log_p: torch.Tensor | None = None) -> torch.Tensor:
    """H(Y|X) = −1/n Σ_i Σ_k p_ik log p_ik, the mean entropy of each point's assignment.

    0 for confident (one-hot) predictions, log K for uniform ones: IMSAT minimises it so each
    point picks a cluster. With ``log_p = log_softmax(logits)`` the gradient stays finite where
    p_ik underflows to 0 (``xlogy`` alone gives 0 for the value but −inf·0 in the backward pass).
    Derived in ``notebooks/08_discriminative_methods.ipynb``.
    """
    _check_probs(p, log_p)
    if log_p is None:
        return -torch.xlogy(p, p).sum(dim=1).mean()
    return -(p * log_p).sum(dim=1).mean()


def _kl_logits(log_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(p ‖ q) from log p and the logits of q (log-space, no eps)."""
    return (log_p.exp() * (log_p - torch.log_softmax(logits_q, dim=1))).sum(dim=1)


def _unit(d: torch.Tensor) -> torch.Tensor:
    """Each sample of ``d`` scaled to unit L2 norm over all its non-batch dimensions."""
    flat = d.reshape(len(d), -1)
    return (flat / torch.linalg.vector_norm(flat, dim=1, keepdim=True).clamp_min(1e-30)).reshape(d.shape)


def _per_sample(value: float | torch.Tensor, x: torch.Tensor, name: str) -> torch.Tensor:
    """A radius given as a number or one per sample, shaped to broadcast over x's sample dims."""
    value = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if value.dim() == 1:
        if len(value) != len(x):
            raise ValueError(f"{name} must be a number or one radius per sample ({len(x)}), got {len(value)}.")
        value = value.reshape(-1, *([1] * (x.dim() - 1)))
    return value


class _FrozenBatchNormStats:
    """Context: batch norm layers keep normalising with batch statistics but stop updating their
    running averages, so the perturbed forward passes of VAT do not pollute them (as in IMSAT's code)."""

    def __init__(self, model: torch.nn.Module):
        self.layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    def __enter__(self):
        self.saved = [m.track_running_stats for m in self.layers]
        for m in self.layers:
            m.track_running_stats = False  # in train mode: use batch statistics, update nothing
        return self

    def __exit__(self, *exc):
        for m, saved in zip(self.layers, self.saved, strict=True):
            m.track_running_stats = saved
        return False


def vat_direction(
    model: torch.nn.Module,
    x: torch.Tensor,
    xi: float | torch.Tensor,
    n_power: int = 1,
    generator: torch.Generator | None = None,
    logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """VAT's adversarial direction: unit vectors d_i (one per sample) by power iteration.

    For a small perturbation r, KL(p(x) ‖ p(x + r)) ≈ ½ rᵀ H r (its value and gradient vanish at
    r = 0), so the most damaging direction is H's dominant eigenvector. Power iteration needs only
    products H d, and ∇_r KL at r = ξ d equals ξ H d + O(ξ²): start from a random unit d, then
    ``n_power`` times set d ← ∇_r KL(p(x) ‖ p(x + ξ d)) / ‖·‖. ``model`` maps x to logits;
    ``xi`` is a number or one step per sample; ``logits`` are model(x) if already computed
    (they are detached). Derived in
    ``notebooks/08_discriminative_methods.ipynb``.
    """
    if n_power < 1:
        raise ValueError(f"n_power must be >= 1, got {n_power}.")
    xi = _per_sample(xi, x, "xi")
    with _FrozenBatchNormStats(model):
        if logits is None:
            with torch.no_grad():
                logits = model(x)
        log_p = torch.log_softmax(logits.detach(), dim=1)
        d = _unit(torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype))
        for _ in range(n_power):
            d.requires_grad_(True)
            kl = _kl_logits(log_p, model(x.detach() + xi * d)).sum()  # sum: each sample's own gradient
            (grad,) = torch.autograd.grad(kl, d)
            d = _unit(grad.detach())
    return d


def vat_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    xi: float | torch.Tensor,
    eps: float | torch.Tensor,
    n_power: int = 1,
    generator: torch.Generator | None = None,
    logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """Virtual adversarial loss 1/n Σ_i KL(p(x_i) ‖ p(x_i + r_adv,i)), r_adv,i = ε_i d_i.

    d comes from ``vat_direction`` (``xi``, ``n_power``); ``eps`` is the perturbation radius, a
    number or one radius per sample (IMSAT scales it with each point's distance to its 10th
    nearest neighbour). p(x) is held fixed (detached): the loss asks the prediction at the
    perturbed point to stay where the clean one is — IMSAT's self-augmented training. Batch norm
    statistics are not updated by the perturbed passes. Derived in
    ``notebooks/08_discriminative_methods.ipynb``.
    """
    eps = _per_sample(eps, x, "eps")
    if logits is None:
        with torch.no_grad(), _FrozenBatchNormStats(model):
            logits = model(x)
    d = vat_direction(model, x, xi, n_power, generator, logits)
    log_p = torch.log_softmax(logits.detach(), dim=1)
    with _FrozenBatchNormStats(model):
        return _kl_logits(log_p, model(x + eps * d)).mean()


def dac_similarity(p: torch.Tensor) -> torch.Tensor:
    """DAC's pairwise similarity g_ij = l_i · l_j with l_i = p_i / ‖p_i‖₂ (cosine of the outputs).

    For softmax outputs (non-negative) g_ij ∈ [0, 1]: 1 when two points have proportional
    predictions (the same one-hot cluster), 0 when their supports do not overlap.
    Derived in ``notebooks/08_discriminative_methods.ipynb``.
    """
    if p.dim() != 2:
        raise ValueError(f"p must be an (n, K) matrix of cluster probabilities, got shape {tuple(p.shape)}.")
    unit = F.normalize(p, dim=1)
    return unit @ unit.t()


def dac_thresholds(lamb: float) -> tuple[float, float]:
    """DAC's adaptive thresholds u(λ) = 0.95 − λ and l(λ) = 0.455 + 0.1 λ (Chang et al., 2017).

    λ grows during training (λ ← λ + 1.1 η each epoch, the gradient step on u(λ) − l(λ)), so the
    pairs labelled "similar" (g > u) and "dissimilar" (g < l) start as the most certain ones and
    grow to cover almost all pairs; training stops when u ≤ l (λ ≥ 0.45).
    """
    return 0.95 - lamb, 0.455 + 0.1 * lamb


def dac_pair_labels(sim: torch.Tensor, upper: float, lower: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair labels r_ij = 1 where g_ij > u, 0 where g_ij < l; pairs in between are not selected.

    Returns ``(target, selected)``: a float matrix of 0/1 labels and a boolean mask v_ij of the
    pairs used by the loss. The diagonal (a point with itself) is never selected. Computed
    without gradient (the labels are fixed targets). Derived in
    ``notebooks/08_discriminative_methods.ipynb``.
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square (n, n) similarity matrix, got shape {tuple(sim.shape)}.")
    if lower > upper:
        raise ValueError(f"the lower threshold {lower} must not exceed the upper one {upper}.")
    sim = sim.detach()
    positive, negative = sim > upper, sim < lower
    off_diagonal = ~torch.eye(len(sim), dtype=torch.bool, device=sim.device)
    return positive.to(sim.dtype), (positive | negative) & off_diagonal


DAC_EPS = 1e-7  # Keras' epsilon: binary cross-entropy clips its probabilities to [eps, 1 - eps]


def dac_loss(p: torch.Tensor, upper: float, lower: float, p_labels: torch.Tensor | None = None) -> torch.Tensor:
    """DAC's pairwise loss: mean over selected pairs of −r_ij log g_ij − (1 − r_ij) log(1 − g_ij).

    g = ``dac_similarity(p)``; labels and selection from ``dac_pair_labels`` applied to the
    similarities of ``p_labels`` (e.g. the clean view when ``p`` is an augmented one; default
    ``p``), detached. Only selected pairs enter the loss. When the labels come from ``p`` itself,
    their g is above u or below l and both logs are finite; when they come from another view, a
    "similar" pair of confident outputs can have g = 0 exactly in float32 (and a "dissimilar" one
    g = 1), so g is clipped to [1e-7, 1 − 1e-7] as Keras' binary cross-entropy (the authors' code)
    does — without it one such pair makes the loss infinite. Returns 0 (with a gradient path) when
    no pair is selected. Derived in ``notebooks/08_discriminative_methods.ipynb``.
    """
    sim = dac_similarity(p).clamp(DAC_EPS, 1 - DAC_EPS)
    target, selected = dac_pair_labels(dac_similarity(p if p_labels is None else p_labels), upper, lower)
    positive = selected & (target > 0)
    negative = selected & (target == 0)
    total = -torch.log(sim[positive]).sum() - torch.log1p(-sim[negative]).sum()
    return total / selected.sum().clamp_min(1)


def depict_target(q: torch.Tensor) -> torch.Tensor:
    """DEPICT's target p_ik = (q_ik / f_k^½) / Σ_k' (q_ik' / f_k'^½), with f_k = Σ_i q_ik.

    Dividing by the square root of the soft cluster size lowers the pull of large clusters and
    raises that of small ones, so the target's clusters are more balanced than q's (unlike DEC's
    q²/f it does not sharpen). Computed in log space. Derived in
    ``notebooks/08_discriminative_methods.ipynb``.
    """
    if q.dim() != 2:
        raise ValueError(f"q must be an (n, K) matrix of soft assignments, got shape {tuple(q.shape)}.")
    tiny = torch.finfo(q.dtype).tiny
    log_weight = torch.log(q.clamp_min(tiny)) - 0.5 * torch.log(q.sum(dim=0, keepdim=True).clamp_min(tiny))
    return torch.softmax(log_weight, dim=1)


# ----------------------------------------------------------------------------- InfoGAN, CatGAN

__all__ += [  # this section's exports
    "info_lower_bound",
    "continuous_info_lower_bound",
    "catgan_discriminator_loss",
    "catgan_generator_loss",
]


def info_lower_bound(
    q_logits: torch.Tensor,
    codes: torch.Tensor,
    prior: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoGAN's variational bound L_I = E_{c∼p(c), x∼G(z,c)}[log Q(c|x)] + H(c) ≤ I(c; x).

    ``q_logits`` (n, K) are Q's logits at the generated x_i, ``codes`` (n,) the categorical codes
    c_i that produced them, ``prior`` the code distribution p(c) (default uniform, H(c) = log K)
    and ``weights`` optional probabilities of the rows (an exact expectation over an enumerated
    joint; default the sample mean). The gap is E_x KL(p(c|x) ‖ Q(c|x)) ≥ 0, so the bound is tight
    when Q is the true posterior. Derived in ``notebooks/10_adversarial_clustering.ipynb``.
    """
    if q_logits.dim() != 2:
        raise ValueError(f"q_logits must be an (n, K) matrix, got shape {tuple(q_logits.shape)}.")
    n, k = q_logits.shape
    if codes.shape != (n,):
        raise ValueError(f"codes must hold one code per row of q_logits ({n},), got shape {tuple(codes.shape)}.")
    log_q = torch.log_softmax(q_logits, dim=1).gather(1, codes.long().reshape(-1, 1)).squeeze(1)
    expected = log_q.mean() if weights is None else (weights.to(log_q.dtype) * log_q).sum()
    if prior is None:
        entropy = math.log(k)
    else:
        if prior.shape != (k,):
            raise ValueError(f"prior must be a vector of {k} probabilities, got shape {tuple(prior.shape)}.")
        entropy = -torch.xlogy(prior, prior).sum().to(log_q.dtype)
    return expected + entropy


def continuous_info_lower_bound(
    mean: torch.Tensor, log_var: torch.Tensor, codes: torch.Tensor, low: float = -1.0, high: float = 1.0
) -> torch.Tensor:
    """The same bound for InfoGAN's continuous codes c ∼ U(low, high)^d with a Gaussian Q:

    E[log N(c; μ(x), diag σ²(x))] + d log(high − low), summed over the d codes and averaged over
    the batch. Only the first term depends on the networks. Derived in
    ``notebooks/10_adversarial_clustering.ipynb``.
    """
    if not (mean.shape == log_var.shape == codes.shape):
        raise ValueError(
            f"mean, log_var and codes must have the same shape, got {tuple(mean.shape)}, "
            f"{tuple(log_var.shape)} and {tuple(codes.shape)}."
        )
    log_density = -0.5 * (math.log(2 * math.pi) + log_var + (codes - mean) ** 2 * torch.exp(-log_var))
    return log_density.sum(dim=-1).mean() + codes.shape[-1] * math.log(high - low)


def catgan_discriminator_loss(
    logits_real: torch.Tensor, logits_fake: torch.Tensor, marginal_weight: float = 1.0
) -> torch.Tensor:
    """CatGAN's discriminator loss, to minimise: −λ H_X[p(y)] + E_x H[p(y|x)] − E_z H[p(y|G(z))].

    Its three wishes: balanced clusters on real data (large marginal entropy, weighted by
    λ = ``marginal_weight``), certain on real images, uncertain on generated ones. The entropies
    are ``marginal_entropy`` and ``conditional_entropy``, computed from log-softmax logits.
    Derived in ``notebooks/10_adversarial_clustering.ipynb``.
    """
    log_real, log_fake = torch.log_softmax(logits_real, dim=1), torch.log_softmax(logits_fake, dim=1)
    p_real, p_fake = log_real.exp(), log_fake.exp()
    return (
        -marginal_weight * marginal_entropy(p_real, log_real)
        + conditional_entropy(p_real, log_real)
        - conditional_entropy(p_fake, log_fake)
    )


def catgan_generator_loss(logits_fake: torch.Tensor, marginal_weight: float = 1.0) -> torch.Tensor:
    """CatGAN's generator loss, to minimise: −λ H_G[p(y)] + E_z H[p(y|G(z))].

    The reverse of the discriminator's wish on fakes: generated images the discriminator is sure
    about (they look like one real cluster), spread over all clusters. Derived in
    ``notebooks/10_adversarial_clustering.ipynb``.
    """
    log_fake = torch.log_softmax(logits_fake, dim=1)
    p_fake = log_fake.exp()
    return -marginal_weight * marginal_entropy(p_fake, log_fake) + conditional_entropy(p_fake, log_fake)


# ----------------------------------------------------------------------------- DEN, embedding space, JULE

__all__ += [  # this section's exports
    "pairwise_student_t",
    "embedding_cross_entropy",
    "locality_preserving_loss",
    "jule_triplet_loss",
]


def _pairwise_log_student_t(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """log of the normalised pairwise Student-t affinities, −inf on the diagonal (i = j is not a pair)."""
    if z.dim() != 2 or len(z) < 2:
        raise ValueError(f"z must be (n, d) with n >= 2 points, got shape {tuple(z.shape)}.")
    logits = student_t_logits(z, z, alpha)
    diagonal = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(diagonal, float("-inf"))
    return logits - torch.logsumexp(logits.flatten(), dim=0)


def pairwise_student_t(z: torch.Tensor, alpha: float = 1.0, log: bool = False) -> torch.Tensor:
    """Joint pairwise affinities p_ij = k(z_i, z_j) / Σ_{k≠l} k(z_k, z_l), p_ii = 0 (t-SNE's joint P).

    k(z_i, z_j) = (1 + ‖z_i − z_j‖²/α)^(−(α+1)/2) is a Student-t kernel with α degrees of freedom:
    α = 1 is the heavy-tailed Cauchy kernel of t-SNE's embedding, large α tends to a Gaussian. The
    (n, n) matrix is symmetric and sums to 1; it is normalised in log space (``logsumexp`` over
    all off-diagonal pairs), and ``log=True`` returns log p (−inf on the diagonal). Derived in
    ``notebooks/11_structure_based.ipynb``.
    """
    log_p = _pairwise_log_student_t(z, alpha)
    return log_p if log else log_p.exp()


def embedding_cross_entropy(
    z: torch.Tensor, e: torch.Tensor, alpha_z: float | None = None, alpha_e: float = 1.0
) -> torch.Tensor:
    """−Σ_{i≠j} p_ij log q_ij: p from the code z (α_z = 2·dim(z) by default), q from the embedding e (α_e = 1).

    The loss of "learning embedding space for clustering from deep representations" (parametric
    t-SNE style): the embedding e = h(z) must reproduce the neighbourhoods of z, and the heavy
    tail of q (α = 1) lets moderately distant points be placed far apart (t-SNE's crowding
    argument), so clusters separate. Only the q-dependent part of KL(P‖Q) (the cross-entropy)
    carries a gradient for e; p keeps z's gradient (detach z for a fixed target). Computed in log
    space; the diagonal (p_ii = 0) is skipped. Derived in ``notebooks/11_structure_based.ipynb``.
    """
    if z.dim() != 2 or e.dim() != 2 or len(z) != len(e):
        raise ValueError(f"z and e must be (n, d) and (n, d') with the same n, got {tuple(z.shape)} and "
                         f"{tuple(e.shape)}.")
    alpha_z = 2.0 * z.shape[1] if alpha_z is None else alpha_z
    p = pairwise_student_t(z, alpha_z)
    log_q = _pairwise_log_student_t(e, alpha_e)
    off_diagonal = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    return -(p[off_diagonal] * log_q[off_diagonal]).sum()


def locality_preserving_loss(z: torch.Tensor, z_neighbors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """DEN's locality term, mean_i Σ_j w_ij ‖z_i − z_j‖² over each point's k graph neighbours.

    ``z`` (n, d), ``z_neighbors`` (n, k, d) the embeddings of each point's k neighbours in the
    input's k-NN graph, ``weights`` (n, k) the graph's heat-kernel weights. Over the whole graph
    Σ_ij W_ij ‖z_i − z_j‖² = 2 tr(Zᵀ L Z) with L = D − W the graph Laplacian (``dclib.graphs``):
    points that are neighbours in the input stay close in the embedding. Derived in
    ``notebooks/11_structure_based.ipynb``.
    """
    if z.dim() != 2 or z_neighbors.dim() != 3 or z_neighbors.shape[0] != len(z) or z_neighbors.shape[2] != z.shape[1]:
        raise ValueError(f"z must be (n, d) and z_neighbors (n, k, d); got {tuple(z.shape)} and "
                         f"{tuple(z_neighbors.shape)}.")
    if weights.shape != z_neighbors.shape[:2]:
        raise ValueError(f"weights must be (n, k) = {tuple(z_neighbors.shape[:2])}, got {tuple(weights.shape)}.")
    return (weights * (z.unsqueeze(1) - z_neighbors).pow(2).sum(-1)).sum(1).mean()


def jule_triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, gamma: float = 2.0,
    margin: float | None = None,
) -> torch.Tensor:
    """JULE's weighted triplet loss, mean over triplets of −(γ·A(x_i, x_j) − A(x_i, x_k)).

    A is the cosine similarity of the network's features; x_j shares x_i's current cluster, x_k
    belongs to a neighbouring cluster (the hard negatives of the merge step); γ > 1 weighs the
    pull of the positive more than the push of the negative. With ``margin`` the term becomes the
    hinge max(0, margin − (γ·A_ij − A_ik)), which stops pushing well-separated triplets.
    Derived in ``notebooks/11_structure_based.ipynb``.
    """
    if anchor.shape != positive.shape or anchor.shape != negative.shape or anchor.dim() != 2:
        raise ValueError(f"anchor, positive and negative must be (n, d) of the same shape, got {tuple(anchor.shape)}, "
                         f"{tuple(positive.shape)} and {tuple(negative.shape)}.")
    score = gamma * F.cosine_similarity(anchor, positive, dim=1) - F.cosine_similarity(anchor, negative, dim=1)
    return (-score if margin is None else torch.relu(margin - score)).mean()
