"""Pairwise Student-t affinities, the embedding cross-entropy, DEN's locality term and JULE's triplet
loss, each against a brute-force double loop (float64) and autograd's gradcheck."""

import math

import pytest
import torch

from dclib.losses import embedding_cross_entropy, jule_triplet_loss, locality_preserving_loss, pairwise_student_t


def _randn(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def brute_pairwise(z, alpha):
    n = len(z)
    kern = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            if i != j:
                d2 = float(((z[i] - z[j]) ** 2).sum())
                kern[i, j] = (1 + d2 / alpha) ** (-(alpha + 1) / 2)
    return kern / kern.sum()


@pytest.mark.parametrize("alpha", [1.0, 2.5, 20.0])
def test_pairwise_student_t_matches_double_loop(alpha):
    z = _randn(7, 3, seed=1, scale=2.0)
    P = pairwise_student_t(z, alpha)
    torch.testing.assert_close(P, brute_pairwise(z, alpha), rtol=1e-12, atol=1e-15)
    assert float(P.sum()) == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(P, P.T)
    assert bool((P.diagonal() == 0).all())
    log_p = pairwise_student_t(z, alpha, log=True)
    assert bool(torch.isneginf(log_p.diagonal()).all())
    off = ~torch.eye(7, dtype=torch.bool)
    torch.testing.assert_close(log_p[off].exp(), P[off])


def test_pairwise_student_t_is_stable_far_apart_in_float32():
    z = torch.tensor([[0.0, 0.0], [1e4, 0.0], [0.0, 1e4], [1e4, 1e4]])
    P = pairwise_student_t(z, alpha=50.0)  # kernels underflow to 0 in float32; log-space keeps a valid P
    assert torch.isfinite(P).all() and float(P.sum()) == pytest.approx(1.0, abs=1e-5)


def test_pairwise_student_t_rejects_bad_input():
    with pytest.raises(ValueError, match="n >= 2"):
        pairwise_student_t(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="alpha"):
        pairwise_student_t(torch.zeros(4, 3), alpha=0.0)


def test_embedding_cross_entropy_matches_double_loop_and_default_alpha():
    z, e = _randn(6, 4, seed=2, scale=1.5), _randn(6, 2, seed=3)
    p, q = brute_pairwise(z, 2 * 4), brute_pairwise(e, 1.0)
    expected = -sum(float(p[i, j]) * math.log(float(q[i, j])) for i in range(6) for j in range(6) if i != j)
    assert float(embedding_cross_entropy(z, e)) == pytest.approx(expected, rel=1e-12)
    p3 = brute_pairwise(z, 3.0)
    q2 = brute_pairwise(e, 2.0)
    expected = -sum(float(p3[i, j]) * math.log(float(q2[i, j])) for i in range(6) for j in range(6) if i != j)
    assert float(embedding_cross_entropy(z, e, alpha_z=3.0, alpha_e=2.0)) == pytest.approx(expected, rel=1e-12)


def test_embedding_cross_entropy_is_minimised_by_q_equal_p():
    """Gibbs' inequality: −Σ p log q ≥ −Σ p log p, with equality at q = p (same points, same α)."""
    z = _randn(8, 3, seed=4)
    p = pairwise_student_t(z, 1.0)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    assert float(embedding_cross_entropy(z, z, alpha_z=1.0, alpha_e=1.0)) == pytest.approx(float(entropy), rel=1e-12)
    assert float(embedding_cross_entropy(z, _randn(8, 3, seed=5), alpha_z=1.0)) > float(entropy)


def test_structure_losses_gradcheck():
    z, e = _randn(5, 3, seed=6).requires_grad_(), _randn(5, 2, seed=7).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: embedding_cross_entropy(a, b), (z, e))
    assert torch.autograd.gradcheck(lambda a: pairwise_student_t(a, 3.0), (z,))
    nb, w = _randn(5, 4, 3, seed=8).requires_grad_(), _randn(5, 4, seed=9).abs()
    assert torch.autograd.gradcheck(lambda a, b: locality_preserving_loss(a, b, w), (z, nb))
    a, p, n = (_randn(5, 3, seed=s).requires_grad_() for s in (10, 11, 12))
    assert torch.autograd.gradcheck(lambda x, y, v: jule_triplet_loss(x, y, v, 2.0), (a, p, n))


def test_locality_preserving_loss_matches_double_loop():
    z, nb, w = _randn(4, 3, seed=13), _randn(4, 2, 3, seed=14), _randn(4, 2, seed=15).abs()
    expected = sum(float(w[i, j]) * float(((z[i] - nb[i, j]) ** 2).sum()) for i in range(4) for j in range(2)) / 4
    assert float(locality_preserving_loss(z, nb, w)) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="weights"):
        locality_preserving_loss(z, nb, w[:, :1])


def test_jule_triplet_loss_values():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    p = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)  # cos = 1
    n = torch.tensor([[0.0, 3.0], [0.0, -1.0]], dtype=torch.float64)  # cos = 0 and -1
    assert float(jule_triplet_loss(a, p, n, gamma=2.0)) == pytest.approx(-(2.0 + 3.0) / 2)
    assert float(jule_triplet_loss(a, p, n, gamma=1.0, margin=1.5)) == pytest.approx((0.5 + 0.0) / 2)
    with pytest.raises(ValueError, match="same shape"):
        jule_triplet_loss(a, p, n[:1])
