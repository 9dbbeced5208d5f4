"""InfoGAN's information bound and CatGAN's entropy losses: exact toys, hand values, autograd."""

import math

import pytest
import torch

from dclib.losses import (
    catgan_discriminator_loss,
    catgan_generator_loss,
    conditional_entropy,
    continuous_info_lower_bound,
    info_lower_bound,
    marginal_entropy,
)

# ----------------------------------------------------------------------------- a discrete toy with known MI


def toy_joint(seed: int = 0, k: int = 3, m: int = 5, prior=None) -> torch.Tensor:
    """p(c, x) for K codes and M discrete 'images': p(c) (uniform unless given) times a random p(x|c)."""
    g = torch.Generator().manual_seed(seed)
    likelihood = torch.softmax(2.0 * torch.randn(k, m, generator=g, dtype=torch.float64), dim=1)
    prior = torch.full((k,), 1.0 / k, dtype=torch.float64) if prior is None else prior
    return prior[:, None] * likelihood


def exact_mi(joint: torch.Tensor) -> float:
    """I(c; x) = Σ p(c, x) log p(c, x) / (p(c) p(x)) by explicit loops."""
    pc, px = joint.sum(1), joint.sum(0)
    return sum(float(joint[i, j] * math.log(joint[i, j] / (pc[i] * px[j])))
               for i in range(joint.shape[0]) for j in range(joint.shape[1]) if joint[i, j] > 0)


def enumerate_pairs(joint: torch.Tensor, q: torch.Tensor):
    """Every (c, x) pair as a row: Q's logits at x (log Q(·|x) for a table q (M, K)), the code c, p(c, x)."""
    k, m = joint.shape
    codes = torch.arange(k).repeat_interleave(m)
    xs = torch.arange(m).repeat(k)
    return q[xs].log(), codes, joint.reshape(-1)


def random_q(m: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 + seed)
    return torch.softmax(3.0 * torch.randn(m, k, generator=g, dtype=torch.float64), dim=1)


@pytest.mark.parametrize("seed", range(4))
def test_bound_is_tight_at_the_true_posterior(seed):
    joint = toy_joint(seed)
    posterior = (joint / joint.sum(0, keepdim=True)).t()  # p(c|x), shape (M, K)
    logits, codes, weights = enumerate_pairs(joint, posterior)
    assert float(info_lower_bound(logits, codes, weights=weights)) == pytest.approx(exact_mi(joint), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_bound_never_exceeds_mi_and_the_gap_is_the_expected_kl(seed):
    joint = toy_joint(seed)
    k, m = joint.shape
    q = random_q(m, k, seed)
    bound = float(info_lower_bound(*enumerate_pairs(joint, q)[:2], weights=joint.reshape(-1)))
    mi = exact_mi(joint)
    assert bound < mi
    posterior = joint / joint.sum(0, keepdim=True)  # (K, M)
    px = joint.sum(0)
    kl = sum(float(px[j] * posterior[i, j] * math.log(posterior[i, j] / q[j, i])) for i in range(k) for j in range(m))
    assert mi - bound == pytest.approx(kl, rel=1e-10)


def test_non_uniform_prior_uses_its_entropy():
    prior = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    joint = toy_joint(3, prior=prior)
    posterior = (joint / joint.sum(0, keepdim=True)).t()
    logits, codes, weights = enumerate_pairs(joint, posterior)
    assert float(info_lower_bound(logits, codes, prior, weights)) == pytest.approx(exact_mi(joint), rel=1e-12)
    uniform = float(info_lower_bound(logits, codes, weights=weights))  # the wrong H(c) = log 3 is larger
    assert uniform - exact_mi(joint) == pytest.approx(math.log(3) + float(torch.xlogy(prior, prior).sum()))


def test_sample_mean_is_a_monte_carlo_estimate_of_the_exact_bound():
    joint = toy_joint(1)
    k, m = joint.shape
    q = random_q(m, k, 1)
    exact = float(info_lower_bound(*enumerate_pairs(joint, q)[:2], weights=joint.reshape(-1)))
    g = torch.Generator().manual_seed(0)
    pairs = torch.multinomial(joint.reshape(-1), 200_000, replacement=True, generator=g)
    codes, xs = pairs // m, pairs % m
    estimate = float(info_lower_bound(q[xs].log(), codes))
    assert estimate == pytest.approx(exact, abs=0.01)


def test_bound_gradient_is_onehot_minus_q():
    """∂L_I/∂ℓ_ik = w_i (1[k = c_i] − Q(k|x_i)), derived from log softmax."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=g, dtype=torch.float64, requires_grad=True)
    codes = torch.randint(4, (7,), generator=g)
    (grad,) = torch.autograd.grad(info_lower_bound(logits, codes), logits)
    expected = (torch.nn.functional.one_hot(codes, 4) - torch.softmax(logits.detach(), 1)) / 7
    torch.testing.assert_close(grad, expected)
    assert torch.autograd.gradcheck(lambda lg: info_lower_bound(lg, codes), (logits,))


def test_bound_input_errors():
    with pytest.raises(ValueError, match="one code per row"):
        info_lower_bound(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="prior"):
        info_lower_bound(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), torch.ones(2) / 2)
    with pytest.raises(ValueError, match=r"\(n, K\)"):
        info_lower_bound(torch.zeros(4), torch.zeros(4, dtype=torch.long))


def test_continuous_bound_is_the_gaussian_log_likelihood_plus_the_uniform_entropy():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(6, 2, generator=g, dtype=torch.float64)
    log_var = torch.randn(6, 2, generator=g, dtype=torch.float64)
    codes = torch.rand(6, 2, generator=g, dtype=torch.float64) * 2 - 1
    normal = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    expected = normal.log_prob(codes).sum(1).mean() + 2 * math.log(2.0)
    torch.testing.assert_close(continuous_info_lower_bound(mean, log_var, codes), expected)
    with pytest.raises(ValueError, match="same shape"):
        continuous_info_lower_bound(mean, log_var, codes[:, :1])


# ----------------------------------------------------------------------------- CatGAN


def h2(a: float) -> float:
    """Binary entropy in nats."""
    return -a * math.log(a) - (1 - a) * math.log(1 - a)


P_REAL = torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64)
P_FAKE = torch.tensor([[0.2, 0.8], [0.6, 0.4]], dtype=torch.float64)


@pytest.mark.parametrize("lam", [1.0, 0.5])
def test_catgan_losses_equal_hand_computed_entropies(lam):
    # real: H[p(y|x)] = (log 2 + h(0.9)) / 2, p(y) = (0.7, 0.3); fake: H = (h(0.2) + h(0.6)) / 2, p(y) = (0.4, 0.6)
    d_expected = -lam * h2(0.7) + (math.log(2) + h2(0.9)) / 2 - (h2(0.2) + h2(0.6)) / 2
    g_expected = -lam * h2(0.4) + (h2(0.2) + h2(0.6)) / 2
    assert float(catgan_discriminator_loss(P_REAL.log(), P_FAKE.log(), lam)) == pytest.approx(d_expected, rel=1e-12)
    assert float(catgan_generator_loss(P_FAKE.log(), lam)) == pytest.approx(g_expected, rel=1e-12)


def test_catgan_losses_are_built_from_the_shared_entropies():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(9, 5, generator=g, dtype=torch.float64)
    fake = torch.randn(9, 5, generator=g, dtype=torch.float64)
    p_real, p_fake = torch.softmax(real, 1), torch.softmax(fake, 1)
    expected = -marginal_entropy(p_real) + conditional_entropy(p_real) - conditional_entropy(p_fake)
    torch.testing.assert_close(catgan_discriminator_loss(real, fake), expected)
    torch.testing.assert_close(catgan_generator_loss(fake), -marginal_entropy(p_fake) + conditional_entropy(p_fake))


def test_catgan_discriminator_optimum_is_minus_two_log_k():
    """Confident balanced real predictions and uniform fake ones reach the minimum −log K − log K."""
    k = 4
    real = 50.0 * torch.eye(k, dtype=torch.float64).repeat(3, 1)
    fake = torch.zeros(12, k, dtype=torch.float64)
    assert float(catgan_discriminator_loss(real, fake)) == pytest.approx(-2 * math.log(k), abs=1e-12)
    assert float(catgan_generator_loss(real)) == pytest.approx(-math.log(k), abs=1e-12)


def test_catgan_gradients_match_finite_differences_and_stay_finite():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(catgan_discriminator_loss, (real, fake))
    assert torch.autograd.gradcheck(catgan_generator_loss, (fake,))
    saturated = torch.tensor([[200.0, -200.0, 0.0], [-200.0, 200.0, 0.0]], requires_grad=True)  # p underflows
    catgan_discriminator_loss(saturated, saturated).backward()
    assert torch.isfinite(saturated.grad).all()
