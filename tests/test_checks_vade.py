"""The lab 04 auto-checks: they fail on a stub and on plausible wrong answers, pass on the reference."""

import pytest
import torch
import torch.nn.functional as F

from dclib.checks_vade import ELBO_TERMS, _reference_terms, check_vade_elbo_terms, check_vade_responsibilities
from dclib.losses import gaussian_log_density, vade_responsibilities


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


def means_not_per_sample(*args):
    return {k: v.mean() for k, v in reference_terms(*args).items()}


@pytest.mark.parametrize("check, solution, wrongs", [
    (check_vade_responsibilities, vade_responsibilities, [naive_responsibilities, without_pi]),
    (check_vade_elbo_terms, reference_terms, [without_trace_term, naive_entropy_c, mean_bce, means_not_per_sample]),
], ids=["responsibilities", "elbo_terms"])
def test_check_fails_on_stub_and_wrong_answers_passes_on_reference(check, solution, wrongs, check_contract):
    check_contract(check, solution, wrongs)


def test_hints_name_the_problem(capsys):
    check_vade_responsibilities(naive_responsibilities)
    assert "log space" in capsys.readouterr().out
    check_vade_responsibilities(without_pi)
    assert "mixture weights" in capsys.readouterr().out
    check_vade_elbo_terms(without_trace_term)
    assert "log_p_z_given_c" in capsys.readouterr().out
    check_vade_elbo_terms(naive_entropy_c)
    assert "entropy_c" in capsys.readouterr().out


def test_reference_terms_add_up_to_the_library_elbo():
    from dclib.checks_vade import _vade_problem
    from dclib.losses import vade_elbo

    p = _vade_problem(3)
    terms = reference_terms(**p)
    assert set(terms) == set(ELBO_TERMS)
    full = vade_elbo(p["x"], p["x_logits"], p["z_mean"], p["z_logvar"], p["pi"], p["mu_c"], p["logvar_c"])
    torch.testing.assert_close(sum(terms.values()), full["per_sample"])
