"""Full-covariance Gaussian-mixture EM on a torch device, all restarts at once.

Why not only scikit-learn's ``GaussianMixture``: it runs on the CPU, one restart after another. VaDE's full start
(lecture 04, section 8.5) runs 20 restarts on 10,000 codes, and on a GPU that CPU EM was, by elimination, most of
what a VaDE fit spent beyond AE + k-means (``benchmarks/RESULTS.md``, session 16). This module runs *scikit-learn's
algorithm*: the same initialisations, E-step, M-step (``reg_covar`` on the diagonal), stopping rule
(``|Δ lower bound| < tol``) and choice of the most likely restart, in float64, with the restarts stacked along a
leading axis so that one kernel serves them all. It returns a fitted ``GaussianMixture``, so everything downstream
(``predict_proba``, ``score``) is scikit-learn's. ``tests/test_mixture.py`` checks it against scikit-learn to 1e-8.
Lecture 04, section 8.6.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state

__all__ = ["full_em", "kmeanspp_mixture", "refined_mixture", "refitted_mixture", "restart_states"]

_ILL_DEFINED = ("Fitting the full-covariance mixture failed: a component's covariance is not positive definite "
                "(a singleton or collapsed cluster). Use fewer clusters or a larger reg_covar, or scale the data.")


def _moments(X: torch.Tensor, resp: torch.Tensor, reg_covar: float) -> tuple[torch.Tensor, ...]:
    """Counts (R, K), means (R, K, D) and covariances (R, K, D, D) of responsibilities ``resp`` (R, N, K).

    As scikit-learn computes them: counts get 10 machine epsilons (an empty component keeps finite means) and each
    covariance is the responsibility-weighted scatter *around its mean* (not E[xxᵀ] − μμᵀ, which cancels digits),
    plus ``reg_covar`` on the diagonal.
    """
    counts = resp.sum(1) + 10 * torch.finfo(X.dtype).eps
    means = torch.einsum("rnk,nd->rkd", resp, X) / counts[..., None]
    diff = X[None, None] - means[:, :, None, :]  # (R, K, N, D)
    weighted = resp.transpose(1, 2)[..., None] * diff
    covariances = weighted.transpose(2, 3) @ diff / counts[..., None, None]
    covariances = covariances + reg_covar * torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
    return counts, means, covariances


def _precision_cholesky(covariances: torch.Tensor) -> torch.Tensor:
    """U = L⁻ᵀ for each covariance L Lᵀ (upper triangular, Λ = U Uᵀ): the factor the E-step multiplies by.

    A covariance that is not positive definite raises the error that names the cause and the fix.
    """
    factor, info = torch.linalg.cholesky_ex(covariances)
    if bool((info > 0).any()):
        raise ValueError(_ILL_DEFINED)
    eye = torch.eye(covariances.shape[-1], dtype=covariances.dtype, device=covariances.device).expand_as(factor)
    return torch.linalg.solve_triangular(factor, eye, upper=False).transpose(-1, -2)


def _e_step(X: torch.Tensor, weights: torch.Tensor, means: torch.Tensor,
            precision_cholesky: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean log-likelihood (R,) and log-responsibilities (R, N, K), normalised with ``logsumexp``.

    log N(x | μ, Λ⁻¹) = −½ (D log 2π + ‖Uᵀ(x − μ)‖²) + log det U, with Λ = U Uᵀ; the R·K products xU − μU are one
    batched matrix product (``baddbmm``), the largest tensor this module makes: R·K·N·D numbers.
    """
    R, K, D = means.shape
    factor = precision_cholesky.reshape(R * K, D, D)
    shifted = torch.baddbmm(-(means.reshape(R * K, 1, D) @ factor), X.expand(R * K, *X.shape), factor)
    log_det = torch.log(torch.diagonal(precision_cholesky, dim1=-2, dim2=-1)).sum(-1)  # (R, K)
    squared = shifted.square().sum(-1).reshape(R, K, -1)
    log_gauss = -0.5 * (D * math.log(2 * math.pi) + squared) + log_det[..., None]
    weighted = log_gauss.transpose(1, 2) + torch.log(weights)[:, None, :]
    log_norm = torch.logsumexp(weighted, dim=2)
    return log_norm.mean(1), weighted - log_norm[..., None]


def full_em(X: torch.Tensor, weights: torch.Tensor, means: torch.Tensor, precision_cholesky: torch.Tensor,
            reg_covar: float = 1e-6, tol: float = 1e-3, max_iter: int = 100) -> dict[str, torch.Tensor]:
    """EM for R full-covariance mixtures on the same data X (N, D), from R starts (leading axis R).

    Each restart stops on its own, when its lower bound (the mean log-likelihood before the M-step) moves by less
    than ``tol``, and from then on is left out of the batch while the others go on. Two host syncs per iteration
    (which restarts still move? did a Cholesky factorisation fail?), none per restart. Returns the parameters,
    ``lower_bound`` (R,), ``n_iter`` (R,) and ``converged`` (R,). Lecture 04, section 8.6.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}.")
    R = weights.shape[0]
    weights, means, precision_cholesky = weights.clone(), means.clone(), precision_cholesky.clone()
    covariances = torch.empty_like(precision_cholesky)  # every restart's is set by its first M-step
    lower_bound = torch.full((R,), -math.inf, dtype=X.dtype, device=X.device)
    n_iter = torch.zeros(R, dtype=torch.long, device=X.device)
    active = torch.ones(R, dtype=torch.bool, device=X.device)
    for _ in range(max_iter):
        moving = torch.nonzero(active).squeeze(1)  # a host sync (the other: _precision_cholesky's check)
        if len(moving) == 0:
            break
        log_norm, log_resp = _e_step(X, weights[moving], means[moving], precision_cholesky[moving])
        counts, means[moving], covariances[moving] = _moments(X, log_resp.exp(), reg_covar)
        weights[moving] = counts / counts.sum(1, keepdim=True)
        precision_cholesky[moving] = _precision_cholesky(covariances[moving])
        change = log_norm - lower_bound[moving]
        lower_bound[moving] = log_norm
        n_iter[moving] += 1
        active[moving] = ~(change.abs() < tol)  # (a NaN change keeps iterating, as in scikit-learn)
    return {"weights": weights, "means": means, "covariances": covariances,
            "precision_cholesky": precision_cholesky, "lower_bound": lower_bound, "n_iter": n_iter,
            "converged": ~active}


def _as_gaussian_mixture(fit: dict[str, torch.Tensor], index: int, random_state) -> GaussianMixture:
    """Restart ``index`` of a ``full_em`` result as a fitted scikit-learn ``GaussianMixture`` (float64, on the CPU)."""
    part = {name: value[index].detach().cpu().numpy() for name, value in fit.items()}
    gmm = GaussianMixture(part["weights"].shape[0], covariance_type="full", random_state=random_state)
    gmm.weights_, gmm.means_, gmm.covariances_ = part["weights"], part["means"], part["covariances"]
    gmm.precisions_cholesky_ = part["precision_cholesky"]
    gmm.precisions_ = gmm.precisions_cholesky_ @ gmm.precisions_cholesky_.transpose(0, 2, 1)
    gmm.lower_bound_, gmm.n_iter_ = float(part["lower_bound"]), int(part["n_iter"])
    gmm.converged_ = bool(part["converged"])
    gmm.n_features_in_ = gmm.means_.shape[1]
    return gmm


def _seeded(X: torch.Tensor, seeds: np.ndarray) -> torch.Tensor:
    """Responsibilities (R, N, K) that give sample ``seeds[r, k]`` alone to component k of restart r, as
    scikit-learn's k-means++ start does (built on X's device: no R·N·K copy from the host)."""
    R, K = seeds.shape
    resp = torch.zeros(R, X.shape[0], K, dtype=X.dtype, device=X.device)
    rows = torch.as_tensor(seeds, device=X.device)
    resp[torch.arange(R, device=X.device)[:, None], rows, torch.arange(K, device=X.device)] = 1.0
    return resp


def _start(X: torch.Tensor, resp: torch.Tensor, reg_covar: float) -> tuple[torch.Tensor, ...]:
    """scikit-learn's initialisation from responsibilities: weights = counts / N (not renormalised), the moments."""
    counts, means, covariances = _moments(X, resp, reg_covar)
    return counts / X.shape[0], means, _precision_cholesky(covariances)


def _warn_if_not_converged(gmm: GaussianMixture, what: str) -> None:
    if not gmm.converged_:
        warnings.warn(f"{what}: EM did not converge in {gmm.n_iter_} iterations; its last mixture is used as it is.",
                      ConvergenceWarning, stacklevel=3)


def restart_states(Z: np.ndarray, n_clusters: int, n_init: int, random_state) -> list[np.random.RandomState]:
    """The random state each of scikit-learn's ``n_init`` k-means++-seeded restarts starts from.

    ``GaussianMixture(n_init=k)`` draws its restarts' seeds one after the other from one generator, and k-means++
    seeding is all a restart draws. Replaying the seedings here gives each restart its own copy of the generator,
    so that the restarts can run apart (in parallel processes, or batched here) and still be exactly those of
    ``n_init=k`` (tested).
    """
    rng = check_random_state(random_state)
    states = []
    for _ in range(n_init):
        states.append(copy.deepcopy(rng))
        kmeans_plusplus(Z, n_clusters, random_state=rng)  # what this restart's seeding draws
    return states


def kmeanspp_mixture(Z: np.ndarray, n_clusters: int, n_init: int = 1, random_state=None,
                     device="cpu", reg_covar: float = 1e-6) -> GaussianMixture:
    """``GaussianMixture(n_clusters, covariance_type="full", init_params="k-means++", n_init=n_init,
    random_state=random_state).fit(Z)``, its restarts batched on ``device``.

    The same restarts (each from the k-means++ seeds it draws, on the CPU, by scikit-learn's ``kmeans_plusplus``)
    and the same one kept: the most likely, the first of equals. Lecture 04, section 8.6.
    """
    rng = check_random_state(random_state)  # one generator, drawn from restart after restart, as n_init does
    seeds = np.stack([kmeans_plusplus(Z, n_clusters, random_state=rng)[1] for _ in range(n_init)])
    X = torch.as_tensor(Z, dtype=torch.float64, device=device)
    fit = full_em(X, *_start(X, _seeded(X, seeds), reg_covar), reg_covar=reg_covar)
    best = int(torch.argmax(fit["lower_bound"]))  # the first maximum
    return _as_gaussian_mixture(fit, best, random_state)


def refined_mixture(Z: np.ndarray, start: GaussianMixture, device, random_state=None) -> GaussianMixture:
    """EM on ``Z`` from ``start``'s weights, means and precisions: ``GaussianMixture(weights_init=...,
    means_init=..., precisions_init=...).fit(Z)`` on ``device``."""
    X = torch.as_tensor(Z, dtype=torch.float64, device=device)
    as_batch = lambda a: torch.as_tensor(a, dtype=torch.float64, device=device)[None]
    # Any factor Λ = F Fᵀ gives the E-step's ‖Fᵀ(x − μ)‖² (scikit-learn's is upper triangular, this one lower).
    precision_cholesky = torch.linalg.cholesky(as_batch(start.precisions_))
    fit = full_em(X, as_batch(start.weights_), as_batch(start.means_), precision_cholesky, reg_covar=start.reg_covar)
    gmm = _as_gaussian_mixture(fit, 0, random_state)
    _warn_if_not_converged(gmm, "The refined full mixture")
    return gmm


def refitted_mixture(Z: np.ndarray, means_init: np.ndarray, device, random_state=None,
                     reg_covar: float = 1e-6) -> GaussianMixture:
    """``GaussianMixture(covariance_type="full", means_init=means_init, random_state=random_state).fit(Z)`` on
    ``device``: weights and covariances start from one k-means run's partition (scikit-learn's default start,
    drawn on the CPU with the same random state), the means from ``means_init``."""
    labels = KMeans(len(means_init), n_init=1, random_state=check_random_state(random_state)).fit(Z).labels_
    X = torch.as_tensor(Z, dtype=torch.float64, device=device)
    resp = torch.nn.functional.one_hot(torch.as_tensor(labels, dtype=torch.long, device=X.device), len(means_init))
    weights, _, precision_cholesky = _start(X, resp.to(X.dtype)[None], reg_covar)
    means = torch.as_tensor(means_init, dtype=torch.float64, device=device)[None]
    fit = full_em(X, weights, means, precision_cholesky, reg_covar=reg_covar)
    gmm = _as_gaussian_mixture(fit, 0, random_state)
    _warn_if_not_converged(gmm, "The refitted full mixture")
    return gmm
