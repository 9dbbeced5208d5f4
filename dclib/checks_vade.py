"""Auto-checks for lab 04 (VaDE): the responsibilities p(c|z), the five terms of the ELBO, log p(z) and the
batched E-step of R full-covariance mixtures.

Same contract as ``dclib.checks``: each check runs the learner's function on known cases,
prints ✓ or ✗ with a hint, and returns True/False. Lab: ``solutions/lab04_vade.ipynb``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .checks import _close, _expect, _run

__all__ = [
    "check_vade_responsibilities", "check_vade_elbo_terms", "check_mixture_log_likelihood", "check_batched_e_step",
    "ELBO_TERMS",
]

ELBO_TERMS = ("reconstruction", "log_p_z_given_c", "log_p_c", "entropy_z", "entropy_c")

def _vade_problem(seed: int = 0, n: int = 6, d: int = 3, C: int = 4, D: int = 8, dtype=torch.float64) -> dict:
    """A random VaDE problem: binary x, decoder logits, q(z|x) and an unequal Gaussian mixture."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)
    return dict(
        x=torch.rand(n, D, generator=g, dtype=dtype).round(),
        x_logits=2 * r(n, D),
        z_mean=r(n, d),
        z_logvar=0.5 * r(n, d) - 1.0,
        pi=torch.softmax(1.5 * r(C), 0),
        mu_c=1.5 * r(C, d),
        logvar_c=0.5 * r(C, d),
    )


def _far_problem(dtype=torch.float64) -> tuple[torch.Tensor, ...]:
    """One point far from both components: every π_c N(z; μ_c, σ_c²) underflows to exactly 0."""
    z = torch.tensor([[1000.0, 1000.0]], dtype=dtype)
    mu_c = torch.tensor([[0.0, 0.0], [970.0, 970.0]], dtype=dtype)
    return z, torch.tensor([0.5, 0.5], dtype=dtype), mu_c, torch.zeros(2, 2, dtype=dtype)


def _reference_terms(x, x_logits, z_mean, z_logvar, pi, mu_c, logvar_c) -> dict[str, torch.Tensor]:
    """The five per-sample terms from ``dclib.losses.vade_elbo`` (one call per row: a mean of one)."""
    from .losses import vade_elbo

    rows = [vade_elbo(x[i : i + 1], x_logits[i : i + 1], z_mean[i : i + 1], z_logvar[i : i + 1], pi, mu_c, logvar_c)
            for i in range(len(x))]
    return {key: torch.stack([row[key] for row in rows]) for key in ELBO_TERMS}


_ARGS = ("x", "x_logits", "z_mean", "z_logvar", "pi", "mu_c", "logvar_c")


def _call(fn: Callable, p: dict):
    """Call the learner's function positionally, in the lab's argument order."""
    return fn(*(p[name] for name in _ARGS))


def _softmax_rows(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=1)


def check_vade_responsibilities(fn: Callable) -> bool:
    """``fn(z, pi, mu_c, logvar_c) -> gamma`` (n, C) with γ_ic = π_c N(z_i; μ_c, σ_c²) / Σ_c' (...)."""
    from .losses import gaussian_log_density, vade_responsibilities

    def shape_and_row_sums():
        p = _vade_problem()
        gamma = fn(p["z_mean"], p["pi"], p["mu_c"], p["logvar_c"])
        _expect(isinstance(gamma, torch.Tensor), f"return a torch tensor, got {type(gamma).__name__}.")
        _expect(tuple(gamma.shape) == (6, 4), f"gamma must be (n, C) = (6, 4), got {tuple(gamma.shape)}.")
        _expect(_close(gamma.sum(1), np.ones(6)),
                "each row of gamma must sum to 1 — normalise over the components (dim=1).")

    def matches_reference():
        for seed, (n, d, C) in enumerate([(6, 3, 4), (10, 2, 3), (5, 5, 7)]):
            p = _vade_problem(seed + 1, n=n, d=d, C=C)
            z, pi, mu_c, logvar_c = p["z_mean"], p["pi"], p["mu_c"], p["logvar_c"]
            got = fn(z, pi, mu_c, logvar_c)
            if _close(got, vade_responsibilities(z, pi, mu_c, logvar_c)):
                continue
            log_n = gaussian_log_density(z, mu_c, logvar_c)
            maha = -0.5 * ((z[:, None] - mu_c[None]) ** 2 * torch.exp(-logvar_c)[None]).sum(-1)
            _expect(not _close(got, _softmax_rows(log_n)),
                    "your gamma ignores the mixture weights — add log π_c to log N(z; μ_c, σ_c²) before "
                    "normalising.")
            _expect(not _close(got, _softmax_rows(torch.log(pi)[None] + maha)),
                    "the −½ Σ_j log σ_cj² term is missing: it differs between components, so it does not "
                    "cancel in the normalisation.")
            _expect(not _close(got, _softmax_rows(torch.log(pi)[None] - 0.5 * ((z[:, None] - mu_c[None]) ** 2
                                                                              / logvar_c[None]).sum(-1))),
                    "logvar_c is log σ², not σ²: divide by exp(logvar_c).")
            _expect(False, f"wrong values (n={n}, d={d}, C={C}) — γ_ic ∝ π_c N(z_i; μ_c, diag σ_c²) with "
                    "log N = −½ Σ_j [log 2π + log σ_cj² + (z_ij − μ_cj)² / σ_cj²].")

    def far_point():
        for dtype in (torch.float32, torch.float64):
            gamma = fn(*_far_problem(dtype))
            _expect(bool(torch.isfinite(gamma).all()),
                    f"gamma is NaN/inf ({dtype}) for a point far from every component: exp(log N) underflows to "
                    "0 and you divide 0 by 0 — normalise in log space (torch.log_softmax / logsumexp).")
            _expect(_close(gamma, np.array([[0.0, 1.0]])),
                    f"the far point must go (almost surely) to the nearer component, got {gamma.tolist()}.")

    return _run("check_vade_responsibilities", [("shape and row sums", shape_and_row_sums),
                                                 ("reference values", matches_reference),
                                                 ("a point far from every component", far_point)])


def check_vade_elbo_terms(fn: Callable) -> bool:
    """``fn(x, x_logits, z_mean, z_logvar, pi, mu_c, logvar_c) -> dict`` of the five per-sample terms.

    Keys ``ELBO_TERMS``, each a tensor of shape (n,), γ evaluated at ``z_mean``; their sum is the ELBO.
    """
    hints = {
        "reconstruction": "log p(x|z) for Bernoulli pixels with logits ℓ: Σ_pixels [x log σ(ℓ) + (1−x) log(1−σ(ℓ))] "
                          "= −binary_cross_entropy_with_logits(ℓ, x, reduction='none').sum(1). x_logits are "
                          "logits, not probabilities; sum over pixels, do not average.",
        "log_p_z_given_c": "Σ_c γ_c · (−½) Σ_j [log 2π + log σ_cj² + σ̃_j²/σ_cj² + (μ̃_j − μ_cj)²/σ_cj²] — "
                           "the expectation under q(z|x) adds the trace term σ̃²/σ_c² to the squared distance.",
        "log_p_c": "Σ_c γ_c log π_c.",
        "entropy_z": "the entropy of N(μ̃, σ̃²): ½ Σ_j (1 + log 2π + log σ̃_j²) — it depends on z_logvar only.",
        "entropy_c": "−Σ_c γ_c log γ_c, with γ = p(c|z) at z_mean.",
    }

    def as_dict(out) -> dict:
        _expect(isinstance(out, dict), f"return a dict with the keys {list(ELBO_TERMS)}, got {type(out).__name__}.")
        missing = [k for k in ELBO_TERMS if k not in out]
        _expect(not missing, f"the returned dict lacks the keys {missing}.")
        return out

    def keys_and_shapes():
        p = _vade_problem()
        out = as_dict(_call(fn, p))
        for key in ELBO_TERMS:
            _expect(isinstance(out[key], torch.Tensor) and tuple(out[key].shape) == (6,),
                    f"{key} must be a tensor with one value per sample, shape (6,), got "
                    f"{tuple(getattr(out[key], 'shape', ()))} — sum over pixels/dimensions/components, not over "
                    "samples.")

    def matches_reference():
        for seed, (n, d, C, D) in enumerate([(6, 3, 4, 8), (9, 2, 3, 5), (4, 5, 6, 12)]):
            p = _vade_problem(10 + seed, n=n, d=d, C=C, D=D)
            out, ref = as_dict(_call(fn, p)), _call(_reference_terms, p)
            for key in ELBO_TERMS:
                _expect(_close(out[key], ref[key]), f"{key} is wrong (n={n}, d={d}, C={C}) — {hints[key]}")

    def one_component_is_the_vae():
        p = _vade_problem(20, C=1)
        p.update(pi=torch.ones(1, dtype=torch.float64), mu_c=torch.zeros(1, 3, dtype=torch.float64),
                 logvar_c=torch.zeros(1, 3, dtype=torch.float64))
        out = as_dict(_call(fn, p))
        kl = -0.5 * (1 + p["z_logvar"] - p["z_mean"] ** 2 - p["z_logvar"].exp()).sum(1)
        prior_terms = out["log_p_z_given_c"] + out["log_p_c"] + out["entropy_z"] + out["entropy_c"]
        _expect(_close(out["entropy_c"], np.zeros(6)) and _close(out["log_p_c"], np.zeros(6)),
                "with one component γ = 1 and π = 1, so log_p_c and entropy_c must be 0.")
        _expect(_close(prior_terms, -kl), "with one standard-normal component, log_p_z_given_c + entropy_z must "
                "be −KL(N(μ̃, σ̃²) ‖ N(0, I)) — the VAE's KL term. " + hints["log_p_z_given_c"])

    def far_point():
        for dtype in (torch.float32, torch.float64):
            z, pi, mu_c, logvar_c = _far_problem(dtype)
            x = torch.tensor([[1.0, 0.0, 1.0]], dtype=dtype)
            args = dict(x=x, x_logits=torch.tensor([[2.0, -1.0, 0.5]], dtype=dtype), z_mean=z,
                        z_logvar=torch.full_like(z, -2.0), pi=pi, mu_c=mu_c, logvar_c=logvar_c)
            out = as_dict(_call(fn, args))
            for key in ELBO_TERMS:
                _expect(bool(torch.isfinite(out[key]).all()),
                        f"{key} is NaN/inf ({dtype}) for a point far from every component — γ underflows to 0 "
                        "there and 0·log 0 = NaN: compute log γ with torch.log_softmax (never log of γ).")
            ref = _call(_reference_terms, {k: v.double() for k, v in args.items()})
            _expect(_close(out["entropy_c"], ref["entropy_c"], tol=1e-4),
                    "entropy_c must be 0 for the far point (γ is one-hot).")

    return _run("check_vade_elbo_terms", [("keys and shapes", keys_and_shapes), ("reference values", matches_reference),
                                           ("one component = the VAE", one_component_is_the_vae),
                                           ("a point far from every component", far_point)])


def _sklearn_diag_score_samples(z, pi, mu_c, logvar_c) -> np.ndarray:
    """log p(z) from scikit-learn's diagonal ``GaussianMixture`` with these parameters: an independent reference."""
    from sklearn.mixture import GaussianMixture

    as_np = lambda t: t.detach().cpu().double().numpy()
    variances = np.exp(as_np(logvar_c))
    gmm = GaussianMixture(len(variances), covariance_type="diag")
    gmm.weights_, gmm.means_, gmm.covariances_ = as_np(pi), as_np(mu_c), variances
    gmm.precisions_cholesky_ = 1.0 / np.sqrt(variances)
    return gmm.score_samples(as_np(z))


def check_mixture_log_likelihood(fn: Callable) -> bool:
    """``fn(z, pi, mu_c, logvar_c) -> log p(z)`` (n,): log Σ_c π_c N(z_i; μ_c, diag σ_c²), lecture 04 §8.4."""
    from .losses import gaussian_log_density

    def shape():
        p = _vade_problem()
        out = fn(p["z_mean"], p["pi"], p["mu_c"], p["logvar_c"])
        _expect(isinstance(out, torch.Tensor), f"return a torch tensor, got {type(out).__name__}.")
        _expect(tuple(out.shape) == (6,), f"log p(z) must have one value per sample, shape (6,), got "
                f"{tuple(out.shape)} — reduce over the components (dim=1), not over the samples.")

    def matches_scikit_learn():
        for seed, (n, d, C) in enumerate([(6, 3, 4), (10, 2, 3), (5, 5, 7)]):
            p = _vade_problem(30 + seed, n=n, d=d, C=C)
            z, pi, mu_c, logvar_c = p["z_mean"], p["pi"], p["mu_c"], p["logvar_c"]
            got = fn(z, pi, mu_c, logvar_c)
            if _close(got, _sklearn_diag_score_samples(z, pi, mu_c, logvar_c)):
                continue
            log_n = gaussian_log_density(z, mu_c, logvar_c)
            _expect(not _close(got, torch.logsumexp(log_n, 1)),
                    "the mixture weights are missing: add log π_c to each component's log-density.")
            _expect(not _close(got, (pi[None] * log_n).sum(1)),
                    "Σ_c π_c log N is a lower bound (Jensen), not log Σ_c π_c N: take the log-sum-exp over the "
                    "components of log π_c + log N.")
            _expect(False, f"wrong values (n={n}, d={d}, C={C}); scikit-learn's GaussianMixture(covariance_type="
                    "'diag').score_samples is the reference: log p(z_i) = logsumexp_c [log π_c + log N(z_i; μ_c, "
                    "diag σ_c²)].")

    def far_point():
        expected = _sklearn_diag_score_samples(*_far_problem())
        for dtype in (torch.float32, torch.float64):
            out = fn(*_far_problem(dtype))
            _expect(bool(torch.isfinite(out).all()),
                    f"log p(z) is −inf/NaN ({dtype}) for a point far from every component: every π_c N underflows "
                    "to 0 and log 0 = −inf. Stay in log space: torch.logsumexp(log π + log N, dim=1).")
            _expect(_close(out.double(), expected, tol=1e-4),
                    f"wrong value for the far point: {out.tolist()}.")

    return _run("check_mixture_log_likelihood", [("shape", shape), ("scikit-learn's values", matches_scikit_learn),
                                                  ("a point far from every component", far_point)])


def _batched_problem(seed: int = 0, R: int = 3, N: int = 7, K: int = 4, D: int = 2) -> tuple[torch.Tensor, ...]:
    """R random full-covariance mixtures on the same N points: weights (R, K), means (R, K, D) and upper-triangular
    precision factors U (R, K, D, D), Σ⁻¹ = U Uᵀ, with unequal diagonals (so U and Uᵀ give different answers)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    factor = torch.triu(0.6 * r(R, K, D, D), diagonal=1) + torch.diag_embed(torch.exp(0.4 * r(R, K, D)))
    return 1.5 * r(N, D), torch.softmax(r(R, K), -1), 1.5 * r(R, K, D), factor


def _brute_force_e_step(X, weights, means, factor) -> tuple[np.ndarray, np.ndarray]:
    """Mean log p(x) (R,) and log γ (R, N, K), one restart and one component at a time, from scipy's density with
    Σ = (U Uᵀ)⁻¹: code written independently of this course, in float64."""
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    X, weights, means, factor = (t.detach().cpu().double().numpy() for t in (X, weights, means, factor))
    R, K = weights.shape
    joint = np.empty((R, len(X), K))
    for r in range(R):
        for k in range(K):
            covariance = np.linalg.inv(factor[r, k] @ factor[r, k].T)
            joint[r, :, k] = np.log(weights[r, k]) + multivariate_normal(means[r, k], covariance).logpdf(X)
    log_norm = logsumexp(joint, axis=2)
    return log_norm.mean(1), joint - log_norm[..., None]


def check_batched_e_step(fn: Callable) -> bool:
    """``fn(X, weights, means, precision_cholesky) -> (mean log p(x) (R,), log γ (R, N, K))``: the E-step of R
    full-covariance mixtures at once, lecture 04 §8.6 (``dclib.mixture``)."""

    def shape():
        out = fn(*_batched_problem())
        _expect(isinstance(out, tuple) and len(out) == 2, "return a pair: (mean log-likelihood per restart, "
                "log-responsibilities).")
        mean_log_likelihood, log_resp = out
        _expect(tuple(mean_log_likelihood.shape) == (3,), "the mean log-likelihood has one value per restart, shape "
                f"(R,) = (3,), got {tuple(mean_log_likelihood.shape)}: average log p(x_n) over the samples only.")
        _expect(tuple(log_resp.shape) == (3, 7, 4), "log γ has shape (R, N, K) = (3, 7, 4), got "
                f"{tuple(log_resp.shape)}.")

    def matches_brute_force():
        for seed, (R, N, K, D) in enumerate([(3, 7, 4, 2), (2, 9, 3, 4), (4, 5, 5, 3)]):
            problem = _batched_problem(40 + seed, R, N, K, D)
            mean_log_likelihood, log_resp = fn(*problem)
            expected_mean, expected_log_resp = _brute_force_e_step(*problem)
            if _close(mean_log_likelihood, expected_mean) and _close(log_resp, expected_log_resp):
                continue
            X, weights, means, factor = problem
            _expect(not _close(mean_log_likelihood, _brute_force_e_step(X, weights, means,
                                                                         factor.transpose(-1, -2))[0]),
                    "you used U (x − μ) instead of Uᵀ (x − μ): with Σ⁻¹ = U Uᵀ the squared distance is "
                    "‖Uᵀ(x − μ)‖², i.e. the row vector (x − μ) times U.")
            _expect(_close(log_resp.exp().sum(-1), torch.ones(R, N, dtype=torch.float64)),
                    "the responsibilities of each sample must sum to 1 over the K components: subtract the "
                    "log-sum-exp over the components (dim=2), not over the samples or the restarts.")
            _expect(not _close(log_resp, expected_log_resp),
                    "the responsibilities are right but the mean log-likelihood is not: average over the samples "
                    "logsumexp_k [log π_rk + log N], with the normaliser −½ D log 2π + log det U, where log det U = "
                    "Σ_d log U_dd (U is triangular).")
            _expect(False, f"wrong values (R={R}, N={N}, K={K}, D={D}). Per restart r and component k: "
                    "log π_rk − ½ (D log 2π + ‖Uᵀ_rk (x − μ_rk)‖²) + log det U_rk, then log-sum-exp over k.")

    def far_point():
        X, weights, means, factor = _batched_problem(50)
        X = X.clone()
        X[0] = 300.0  # far from every component: each π N underflows to exactly 0
        mean_log_likelihood, log_resp = fn(X, weights, means, factor)
        _expect(bool(torch.isfinite(mean_log_likelihood).all() and torch.isfinite(log_resp).all()),
                "−inf or NaN for a point far from every component: every π N underflows to 0. Stay in log space: "
                "torch.logsumexp over the components.")
        expected_mean, expected_log_resp = _brute_force_e_step(X, weights, means, factor)
        _expect(_close(mean_log_likelihood, expected_mean, tol=1e-5) and _close(log_resp, expected_log_resp,
                                                                                 tol=1e-5),
                "wrong values when one point is far from every component.")

    return _run("check_batched_e_step", [("shapes", shape), ("scipy's densities", matches_brute_force),
                                         ("a point far from every component", far_point)])
