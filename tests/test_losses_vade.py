"""VaDE's closed-form ELBO against Monte Carlo, the VAE special case, gradients and stability."""

import math

import pytest
import torch

from dclib.losses import gaussian_log_density, vade_elbo, vade_responsibilities


def _problem(n=4, d=3, C=3, D=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)
    return dict(
        x=torch.rand(n, D, generator=g, dtype=dtype).round(),  # binary pixels
        x_recon=r(n, D),  # Bernoulli logits
        z_mean=r(n, d),
        z_logvar=0.3 * r(n, d) - 0.5,
        pi=torch.softmax(r(C), 0),
        mu_c=r(C, d),
        logvar_c=0.3 * r(C, d),
    )


def test_gaussian_log_density_matches_torch_distributions():
    p = _problem()
    ref = torch.distributions.Normal(p["mu_c"], torch.exp(0.5 * p["logvar_c"]))
    expected = ref.log_prob(p["z_mean"][:, None, :]).sum(-1)
    torch.testing.assert_close(gaussian_log_density(p["z_mean"], p["mu_c"], p["logvar_c"]), expected)


def test_responsibilities_are_bayes_rule_and_rows_sum_to_one():
    p = _problem()
    gamma = vade_responsibilities(p["z_mean"], p["pi"], p["mu_c"], p["logvar_c"])
    joint = p["pi"] * torch.exp(gaussian_log_density(p["z_mean"], p["mu_c"], p["logvar_c"]))
    torch.testing.assert_close(gamma, joint / joint.sum(1, keepdim=True))
    torch.testing.assert_close(gamma.sum(1), torch.ones(4, dtype=torch.float64))


def test_responsibilities_stable_for_far_points():
    z = torch.tensor([[1e4, -1e4]], dtype=torch.float32)
    mu = torch.tensor([[0.0, 0.0], [1e4, -1e4 + 3]])
    gamma = vade_responsibilities(z, torch.tensor([0.5, 0.5]), mu, torch.zeros(2, 2))
    assert torch.isfinite(gamma).all() and gamma[0, 1] > 0.999  # naive exp() would give 0/0


def test_reconstruction_term_by_hand():
    p = _problem()
    out = vade_elbo(**p)
    probs = torch.sigmoid(p["x_recon"])
    by_hand = (p["x"] * probs.log() + (1 - p["x"]) * (1 - probs).log()).sum(1).mean()
    torch.testing.assert_close(out["reconstruction"], by_hand)
    gauss = vade_elbo(**p, likelihood="gaussian")["reconstruction"]
    torch.testing.assert_close(gauss, (-0.5 * ((p["x"] - p["x_recon"]) ** 2 + math.log(2 * math.pi)).sum(1)).mean())


def test_terms_add_up_to_the_elbo():
    out = vade_elbo(**_problem())
    total = sum(out[k] for k in ("reconstruction", "log_p_z_given_c", "log_p_c", "entropy_z", "entropy_c"))
    torch.testing.assert_close(out["elbo"], total)
    torch.testing.assert_close(out["elbo"], out["per_sample"].mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_equals_monte_carlo(seed):
    """E_q[log p(z|c) + log p(c) - log q(z|x) - log q(c|x)] by sampling z ~ q(z|x), c ~ γ."""
    p = _problem(seed=seed)
    out = vade_elbo(**p)
    closed = out["per_sample"] - (
        -torch.nn.functional.binary_cross_entropy_with_logits(p["x_recon"], p["x"], reduction="none").sum(1)
    )
    gamma = out["gamma"]
    S = 50_000
    g = torch.Generator().manual_seed(100 + seed)
    std = torch.exp(0.5 * p["z_logvar"])
    for i in range(len(p["x"])):
        z = p["z_mean"][i] + std[i] * torch.randn(S, 3, generator=g, dtype=torch.float64)
        c = torch.multinomial(gamma[i], S, replacement=True, generator=g)
        log_p_z_c = gaussian_log_density(z, p["mu_c"], p["logvar_c"]).gather(1, c[:, None])[:, 0]
        log_q_z = torch.distributions.Normal(p["z_mean"][i], std[i]).log_prob(z).sum(1)
        samples = log_p_z_c + p["pi"].log()[c] - log_q_z - gamma[i].log()[c]
        stderr = samples.std() / math.sqrt(S)
        assert abs(samples.mean() - closed[i]) < 4 * stderr, (float(samples.mean()), float(closed[i]), float(stderr))


def test_one_cluster_reduces_to_the_vae_elbo():
    p = _problem(C=1)
    p["pi"] = torch.ones(1, dtype=torch.float64)
    p["mu_c"] = torch.zeros(1, 3, dtype=torch.float64)
    p["logvar_c"] = torch.zeros(1, 3, dtype=torch.float64)
    out = vade_elbo(**p)
    kl = -0.5 * (1 + p["z_logvar"] - p["z_mean"] ** 2 - p["z_logvar"].exp()).sum(1)
    vae = out["reconstruction"] - kl.mean()
    torch.testing.assert_close(out["elbo"], vae)
    assert out["entropy_c"] == pytest.approx(0.0) and out["log_p_c"] == pytest.approx(0.0)


def test_gradients_reach_all_mixture_parameters_and_pi_stays_on_simplex():
    p = _problem()
    logits = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    mu_c = p["mu_c"].clone().requires_grad_(True)
    logvar_c = p["logvar_c"].clone().requires_grad_(True)
    z_mean = p["z_mean"].clone().requires_grad_(True)
    out = vade_elbo(p["x"], p["x_recon"], z_mean, p["z_logvar"], torch.softmax(logits, 0), mu_c, logvar_c)
    out["elbo"].backward()
    for t in (logits, mu_c, logvar_c, z_mean):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_gradcheck_of_the_elbo():
    p = _problem(n=2, d=2, C=2, D=3)
    def fn(zm, zl, logits, mu, lv):
        return vade_elbo(p["x"], p["x_recon"], zm, zl, torch.softmax(logits, 0), mu, lv)["elbo"]

    inputs = (p["z_mean"], p["z_logvar"], torch.zeros(2, dtype=torch.float64), p["mu_c"], p["logvar_c"])
    assert torch.autograd.gradcheck(fn, tuple(t.clone().requires_grad_(True) for t in inputs))


def test_far_away_points_give_finite_loss_and_gradients():
    p = _problem(dtype=torch.float32)
    p["z_mean"] = (p["z_mean"] * 1e3).requires_grad_(True)
    mu_c = p.pop("mu_c").requires_grad_(True)
    out = vade_elbo(**p, mu_c=mu_c)
    out["elbo"].backward()
    assert torch.isfinite(out["elbo"]) and torch.isfinite(p["z_mean"].grad).all() and torch.isfinite(mu_c.grad).all()


def test_bad_arguments():
    p = _problem()
    with pytest.raises(ValueError, match="likelihood"):
        vade_elbo(**p, likelihood="poisson")
    with pytest.raises(ValueError, match="mu_c"):
        vade_responsibilities(p["z_mean"], p["pi"], p["mu_c"][:, :2], p["logvar_c"])
