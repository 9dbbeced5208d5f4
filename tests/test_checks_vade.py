"""The lab 04 auto-checks: they fail on a stub and on plausible wrong answers, pass on the reference."""

import math

import pytest
import torch
import torch.nn.functional as F

from dclib.checks_vade import (
    ELBO_TERMS,
    _reference_terms,
    check_batched_e_step,
    check_mixture_log_likelihood,
    check_vade_elbo_terms,
    check_vade_responsibilities,
)
from dclib.losses import gaussian_log_density, vade_responsibilities
from dclib.mixture import _e_step


def stub(*args, **kwargs):
    raise NotImplementedError()


def reference_terms(x, x_logits, z_mean, z_logvar, pi, mu_c, logvar_c):
    """``dclib.losses.vade_elbo`` wrapped to the lab's signature (per-sample terms)."""
    return _reference_terms(x, x_logits, z_mean, z_logvar, pi, mu_c, logvar_c)


def naive_responsibilities(z, pi, mu_c, logvar_c):
    """Right formula, wrong numerics: exp() then divide gives 0/0 far from every component."""
    joint = pi * torch.exp(gaussian_log_density(z, mu_c, logvar_c))
    return joint / joint.sum(1, keepdim=True)


def without_pi(z, pi, mu_c, logvar_c):
    return torch.softmax(gaussian_log_density(z, mu_c, logvar_c), dim=1)


def without_trace_term(x, x_logits, z_mean, z_logvar, pi, mu_c, logvar_c):
    """Plugs z_mean into log N(z; μ_c, σ_c²): forgets the σ̃²/σ_c² term of the expectation."""
    out = reference_terms(x, x_logits, z_mean, z_logvar, pi, mu_c, logvar_c)
    gamma = vade_responsibilities(z_mean, pi, mu_c, logvar_c)
    out["log_p_z_given_c"] = (gamma * gaussian_log_density(z_mean, mu_c, logvar_c)).sum(1)
    return out


def naive_entropy_c(x, x_logits, z_mean, z_logvar, pi, mu_c, logvar_c):
    """−Σ γ log γ with log of γ: 0·(−inf) = NaN where γ underflows."""
    out = reference_terms(x, x_logits, z_mean, z_logvar, pi, mu_c, logvar_c)
    gamma = vade_responsibilities(z_mean, pi, mu_c, logvar_c)
    out["entropy_c"] = -(gamma * torch.log(gamma)).sum(1)
    return out


def mean_bce(x, x_logits, z_mean, z_logvar, pi, mu_c, logvar_c):
    """Averages the pixels instead of summing them."""
    out = reference_terms(x, x_logits, z_mean, z_logvar, pi, mu_c, logvar_c)
    out["reconstruction"] = -F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").mean(1)
    return out


def mixture_log_likelihood(z, pi, mu_c, logvar_c):
    """The lab's Task 5 answer: log Σ_c π_c N(z; μ_c, diag σ_c²) in log space."""
    return torch.logsumexp(torch.log(pi)[None] + gaussian_log_density(z, mu_c, logvar_c), dim=1)


def naive_mixture_log_likelihood(z, pi, mu_c, logvar_c):
    """Right formula, exp() first: log 0 = −inf far from every component."""
    return torch.log((pi[None] * torch.exp(gaussian_log_density(z, mu_c, logvar_c))).sum(1))


def jensen_bound(z, pi, mu_c, logvar_c):
    """Σ_c π_c log N: the log moved inside the sum (a lower bound, not log p(z))."""
    return (pi[None] * gaussian_log_density(z, mu_c, logvar_c)).sum(1)


def _log_gaussians(X, means, factor, left=False, log_det=True):
    """log N(x | μ_rk, (U Uᵀ)⁻¹) as (R, N, K); ``left`` multiplies U (x − μ) (the transposed factor)."""
    diff = X[None, None] - means[:, :, None, :]  # (R, K, N, D)
    y = torch.einsum("rkde,rkne->rknd", factor, diff) if left else diff @ factor
    det = torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1)[..., None] if log_det else 0.0
    return (-0.5 * (X.shape[1] * math.log(2 * math.pi) + y.square().sum(-1)) + det).transpose(1, 2)


def _normalised(weights, log_gauss):
    weighted = torch.log(weights)[:, None, :] + log_gauss
    log_norm = torch.logsumexp(weighted, dim=2)
    return log_norm.mean(1), weighted - log_norm[..., None]


def factor_from_the_left(X, weights, means, factor):
    """‖U(x − μ)‖² instead of ‖Uᵀ(x − μ)‖²: the precision Uᵀ U, not U Uᵀ."""
    return _normalised(weights, _log_gaussians(X, means, factor, left=True))


def without_log_det(X, weights, means, factor):
    return _normalised(weights, _log_gaussians(X, means, factor, log_det=False))


def normalised_over_samples(X, weights, means, factor):
    weighted = torch.log(weights)[:, None, :] + _log_gaussians(X, means, factor)
    log_norm = torch.logsumexp(weighted, dim=1, keepdim=True)
    return torch.logsumexp(weighted, dim=2).mean(1), weighted - log_norm


def without_two_pi(X, weights, means, factor):
    mean_log_likelihood, log_resp = _e_step(X, weights, means, factor)
    return mean_log_likelihood + 0.5 * X.shape[1] * math.log(2 * math.pi), log_resp


def exp_then_log(X, weights, means, factor):
    """Right formula, wrong numerics: the densities underflow far from every component."""
    joint = weights[:, None, :] * torch.exp(_log_gaussians(X, means, factor))
    norm = joint.sum(2, keepdim=True)
    return torch.log(norm[..., 0]).mean(1), torch.log(joint / norm)


def means_not_per_sample(*args):
    return {k: v.mean() for k, v in reference_terms(*args).items()}


@pytest.mark.parametrize("check, solution, wrongs", [
    (check_vade_responsibilities, vade_responsibilities, [naive_responsibilities, without_pi]),
    (check_vade_elbo_terms, reference_terms, [without_trace_term, naive_entropy_c, mean_bce, means_not_per_sample]),
    (check_mixture_log_likelihood, mixture_log_likelihood, [naive_mixture_log_likelihood, jensen_bound]),
    (check_batched_e_step, _e_step, [factor_from_the_left, without_log_det, normalised_over_samples, without_two_pi,
                                     exp_then_log]),
], ids=["responsibilities", "elbo_terms", "mixture_log_likelihood", "batched_e_step"])
def test_check_fails_on_stub_and_wrong_answers_passes_on_reference(check, solution, wrongs, check_contract):
    check_contract(check, solution, wrongs)


@pytest.mark.parametrize("check, wrong, hint", [
    (check_vade_responsibilities, naive_responsibilities, "log space"),
    (check_vade_responsibilities, without_pi, "mixture weights"),
    (check_vade_elbo_terms, without_trace_term, "log_p_z_given_c"),
    (check_vade_elbo_terms, naive_entropy_c, "entropy_c"),
    (check_mixture_log_likelihood, naive_mixture_log_likelihood, "log space"),
    (check_mixture_log_likelihood, jensen_bound, "Jensen"),
    (check_batched_e_step, factor_from_the_left, "instead of Uᵀ"),
    (check_batched_e_step, normalised_over_samples, "sum to 1 over the K components"),
    (check_batched_e_step, without_two_pi, "responsibilities are right"),
    (check_batched_e_step, exp_then_log, "log space"),
], ids=lambda v: getattr(v, "__name__", None))
def test_hints_name_the_problem(check, wrong, hint, capsys):
    assert check(wrong) is False
    assert hint in capsys.readouterr().out


def test_batched_e_step_brute_force_is_the_dclib_mixture_e_step_and_scikit_learns():
    """The check's scipy reference, dclib.mixture's E-step and scikit-learn's score_samples agree on one restart."""
    import numpy as np
    from sklearn.mixture import GaussianMixture

    from dclib.checks_vade import _batched_problem, _brute_force_e_step

    X, weights, means, factor = _batched_problem(3, R=2, N=6, K=3, D=3)
    expected_mean, expected_log_resp = _brute_force_e_step(X, weights, means, factor)
    mean_log_likelihood, log_resp = _e_step(X, weights, means, factor)
    np.testing.assert_allclose(mean_log_likelihood.numpy(), expected_mean, rtol=1e-10)
    np.testing.assert_allclose(log_resp.numpy(), expected_log_resp, rtol=1e-9, atol=1e-12)
    gmm = GaussianMixture(3, covariance_type="full")
    gmm.weights_, gmm.means_ = weights[1].numpy(), means[1].numpy()
    gmm.precisions_cholesky_ = factor[1].numpy()
    assert gmm.score_samples(X.numpy()).mean() == pytest.approx(expected_mean[1], rel=1e-10)


def test_mixture_log_likelihood_reference_is_the_brute_force_sum():
    """The check's scikit-learn reference equals log Σ_c π_c N(z; μ_c, σ_c²) summed by hand, in float64."""
    import math

    from dclib.checks_vade import _sklearn_diag_score_samples, _vade_problem

    p = _vade_problem(7, n=5, d=3, C=4)
    z, pi, mu_c, logvar_c = (p[k] for k in ("z_mean", "pi", "mu_c", "logvar_c"))
    by_hand = []
    for i in range(len(z)):
        total = 0.0
        for c in range(len(pi)):
            density = 1.0
            for j in range(z.shape[1]):
                var = math.exp(float(logvar_c[c, j]))
                gap2 = (float(z[i, j]) - float(mu_c[c, j])) ** 2
                density *= math.exp(-0.5 * gap2 / var) / math.sqrt(2 * math.pi * var)
            total += float(pi[c]) * density
        by_hand.append(math.log(total))
    assert _sklearn_diag_score_samples(z, pi, mu_c, logvar_c) == pytest.approx(by_hand, rel=1e-9)


def test_reference_terms_add_up_to_the_library_elbo():
    from dclib.checks_vade import _vade_problem
    from dclib.losses import vade_elbo

    p = _vade_problem(3)
    terms = reference_terms(**p)
    assert set(terms) == set(ELBO_TERMS)
    full = vade_elbo(p["x"], p["x_logits"], p["z_mean"], p["z_logvar"], p["pi"], p["mu_c"], p["logvar_c"])
    torch.testing.assert_close(sum(terms.values()), full["per_sample"])
