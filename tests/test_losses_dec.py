"""DEC's loss maths checked against autograd and against hand computations, in float64."""

import pytest
import torch

from dclib.losses import dec_gradients, dec_loss, student_t_assignment, target_distribution

SHAPES = [(1, 2, 1), (7, 3, 2), (20, 5, 4), (64, 10, 10)]


def _random_problem(n, k, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    mu = torch.randn(k, d, generator=g, dtype=torch.float64) * 2
    return z, mu


def test_student_t_matches_formula_and_rows_sum_to_one():
    z, mu = _random_problem(9, 4, 3)
    for alpha in (1.0, 2.0, 10.0):
        q = student_t_assignment(z, mu, alpha)
        d2 = ((z[:, None, :] - mu[None]) ** 2).sum(-1)
        kernel = (1 + d2 / alpha) ** (-(alpha + 1) / 2)
        torch.testing.assert_close(q, kernel / kernel.sum(1, keepdim=True))
        torch.testing.assert_close(q.sum(1), torch.ones(9, dtype=torch.float64))


def test_student_t_is_stable_for_far_points():
    z = torch.tensor([[1e6, -1e6]], dtype=torch.float32)
    mu = torch.tensor([[0.0, 0.0], [1e6, -1e6 + 1]])
    q = student_t_assignment(z, mu)
    assert torch.isfinite(q).all() and q[0, 1] > 0.99


def test_target_distribution_by_hand():
    q = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]], dtype=torch.float64)
    f = q.sum(0)  # soft cluster frequencies: 1.7, 1.3
    w = q**2 / f
    expected = w / w.sum(1, keepdim=True)
    p = target_distribution(q)
    torch.testing.assert_close(p, expected)
    # sharper than q on confident rows, and row-stochastic
    assert p[0, 0] > q[0, 0] and p[2, 1] > q[2, 1]
    torch.testing.assert_close(p.sum(1), torch.ones(3, dtype=torch.float64))


def test_target_distribution_normalises_by_cluster_frequency():
    # A huge cluster 0 and a small cluster 1; an ambivalent point is pushed to the small one.
    q = torch.tensor([[0.9, 0.1]] * 8 + [[0.5, 0.5]], dtype=torch.float64)
    p = target_distribution(q)
    assert p[-1, 1] > 0.5


def test_dec_loss_reductions_and_known_values():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=torch.float64)
    row0 = 0.5 * torch.log(torch.tensor(0.5 / 0.25)) + 0.5 * torch.log(torch.tensor(0.5 / 0.75))
    row1 = torch.log(torch.tensor(2.0))  # the p=0 entry contributes 0
    torch.testing.assert_close(dec_loss(p, q, "none"), torch.stack([row0, row1]).double())
    torch.testing.assert_close(dec_loss(p, q, "sum"), (row0 + row1).double())
    torch.testing.assert_close(dec_loss(p, q, "mean"), ((row0 + row1) / 2).double())
    assert dec_loss(q, q) == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(
        dec_loss(p, q, "sum"), torch.nn.functional.kl_div(q.log(), p, reduction="sum")
    )
    with pytest.raises(ValueError, match="reduction"):
        dec_loss(p, q, "avg")


@pytest.mark.parametrize("alpha", [1.0, 2.0, 10.0])
@pytest.mark.parametrize("n,k,d", SHAPES)
def test_dec_gradients_match_autograd(n, k, d, alpha):
    z, mu = _random_problem(n, k, d, seed=n * k + d)
    z.requires_grad_(True)
    mu.requires_grad_(True)
    p = target_distribution(student_t_assignment(z, mu, alpha)).detach()  # P held fixed
    loss = dec_loss(p, student_t_assignment(z, mu, alpha), reduction="sum")
    auto_z, auto_mu = torch.autograd.grad(loss, (z, mu))
    grad_z, grad_mu = dec_gradients(z.detach(), mu.detach(), p, alpha)
    torch.testing.assert_close(grad_z, auto_z, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(grad_mu, auto_mu, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 10.0])
def test_dec_loss_gradcheck(alpha):
    z, mu = _random_problem(6, 3, 2, seed=3)
    p = target_distribution(student_t_assignment(z, mu, alpha)).detach()
    fn = lambda z_, mu_: dec_loss(p, student_t_assignment(z_, mu_, alpha), reduction="sum")
    assert torch.autograd.gradcheck(fn, (z.requires_grad_(), mu.requires_grad_()))


def test_dec_gradients_are_not_trivially_zero():
    """Guards the test above: with P fixed away from Q the gradient must be non-zero."""
    z, mu = _random_problem(10, 3, 2, seed=5)
    p = target_distribution(student_t_assignment(z, mu))
    gz, gmu = dec_gradients(z, mu, p)
    assert gz.abs().max() > 1e-3 and gmu.abs().max() > 1e-3


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="same d"):
        student_t_assignment(torch.zeros(3, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="alpha"):
        student_t_assignment(torch.zeros(3, 2), torch.zeros(2, 2), alpha=0)
