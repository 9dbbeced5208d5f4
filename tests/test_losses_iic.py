"""IIC's mutual information against brute force, scikit-learn, and its known extreme values."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from dclib.augment import Augment, random_affine
from dclib.checks_iic import brute_force_mi  # explicit loops over samples and cell pairs
from dclib.losses import iic_joint, iic_loss


def _probs(n, C, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(n, C, generator=g, dtype=torch.float64), 1)


@pytest.mark.parametrize("seed", range(4))
def test_joint_and_loss_match_brute_force(seed):
    p, q = _probs(30, 4, seed), _probs(30, 4, seed + 10)
    mi, joint = brute_force_mi(p, q)
    torch.testing.assert_close(iic_joint(p, q), torch.as_tensor(joint))
    assert float(iic_joint(p, q).sum()) == pytest.approx(1.0)
    assert float(iic_loss(p, q, eps=1e-300)) == pytest.approx(-mi, rel=1e-9)


def test_hard_assignments_equal_sklearn_mutual_info():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 200)
    b = np.where(rng.random(200) < 0.6, a, rng.integers(0, 5, 200))
    onehot = lambda v: torch.nn.functional.one_hot(torch.as_tensor(v), 5).double()
    # symmetrising the joint: average the two directions, which for MI means the pairs (a,b) and (b,a)
    both_a, both_b = np.concatenate([a, b]), np.concatenate([b, a])
    expected = mutual_info_score(both_a, both_b)
    assert float(-iic_loss(onehot(a), onehot(b), eps=1e-300)) == pytest.approx(expected, rel=1e-9)


def test_extremes_log_c_for_perfect_zero_for_collapse_and_independence():
    C = 6
    labels = torch.arange(600) % C
    onehot = torch.nn.functional.one_hot(labels, C).double()
    assert float(-iic_loss(onehot, onehot)) == pytest.approx(math.log(C), rel=1e-5)  # eps-clamped zeros
    collapsed = torch.zeros(600, C, dtype=torch.float64)
    collapsed[:, 0] = 1
    # (the default eps clamp of empty cells shifts the loss by ~1e-6; a tiny eps shows the exact 0)
    assert float(iic_loss(collapsed, collapsed, eps=1e-15)) == pytest.approx(0.0, abs=1e-9)
    assert float(iic_loss(collapsed, collapsed)) == pytest.approx(0.0, abs=1e-5)
    # independent views: each assignment ignores the image, so P = m mᵀ factorises and I = 0
    constant = _probs(1, C, 1).expand(50, C)
    assert float(iic_loss(constant, constant, eps=1e-15)) == pytest.approx(0.0, abs=1e-9)


def test_no_nan_with_zero_entries_and_gradients_flow():
    logits = torch.tensor([[50.0, -50.0, -50.0], [-50.0, 50.0, -50.0]], requires_grad=True)
    p = torch.softmax(logits, 1)
    loss = iic_loss(p, p)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_lamb_weights_the_marginal_entropies():
    p, q = _probs(40, 3, 2), _probs(40, 3, 3)
    joint = iic_joint(p, q)
    h_row = -(joint.sum(1) * joint.sum(1).log()).sum()
    h_col = -(joint.sum(0) * joint.sum(0).log()).sum()
    # −Σ P (log P − λ log P_c − λ log P_c') = H(P) − λ (H(P_c) + H(P_c')); λ = 1 gives −I
    h_joint = -(joint * joint.log()).sum()
    for lamb in (1.0, 2.0):
        assert float(iic_loss(p, q, lamb=lamb)) == pytest.approx(float(h_joint - lamb * (h_row + h_col)), rel=1e-9)


def test_augment_is_batched_random_per_image_and_deterministic_with_generator():
    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 10:18, 12:16] = 1.0
    a1 = Augment()(x, torch.Generator().manual_seed(0))
    a2 = Augment()(x, torch.Generator().manual_seed(0))
    assert a1.shape == x.shape and a1.min() >= 0 and a1.max() <= 1
    torch.testing.assert_close(a1, a2)
    assert not torch.allclose(a1[0], a1[1]), "each image must get its own random transform"
    # identity parameters give back the image
    same = random_affine(x, degrees=0, scale=(1, 1), shear=0, translate=0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="images"):
        Augment()(torch.zeros(3, 784))
