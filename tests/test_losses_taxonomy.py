"""DCN's k-means loss and the taxonomy's other clustering losses: hand computations and gradchecks (float64)."""

import math

import pytest
import torch

from dclib.losses import (
    balanced_assignment_loss,
    cluster_classification_loss,
    group_sparsity_loss,
    kmeans_assignment,
    kmeans_loss,
)

D = dict(dtype=torch.float64)


def _random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), **D)


# ----------------------------------------------------------------------------- k-means loss (DCN)


def test_kmeans_loss_by_hand_and_its_reduction():
    z = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, 1.0]], **D)
    centers = torch.tensor([[0.0, 0.0], [2.0, 2.0]], **D)
    s = torch.tensor([1, 0, 1])
    # ½‖(1,2)−(2,2)‖² = ½·1 = 0.5;  ½‖(0,0)−(0,0)‖² = 0;  ½‖(3,1)−(2,2)‖² = ½·(1+1) = 1
    per_sample = torch.tensor([0.5, 0.0, 1.0], **D)
    torch.testing.assert_close(kmeans_loss(z, centers, s, reduction="none"), per_sample)
    torch.testing.assert_close(kmeans_loss(z, centers, s, reduction="sum"), torch.tensor(1.5, **D))
    # the default: mean over the batch of the per-sample sum over coordinates, 1.5 / 3
    torch.testing.assert_close(kmeans_loss(z, centers, s), torch.tensor(0.5, **D))
    # s_i as one-hot rows gives M s_i = μ_{s_i}: the same numbers
    torch.testing.assert_close(kmeans_loss(z, centers, torch.nn.functional.one_hot(s, 2)), torch.tensor(0.5, **D))
    # a soft row is taken literally: s = (½, ½) gives M s = (1, 1) and ½‖(1,2)−(1,1)‖² = 0.5
    soft = torch.tensor([[0.5, 0.5]], **D)
    torch.testing.assert_close(kmeans_loss(z[:1], centers, soft), torch.tensor(0.5, **D))


def test_kmeans_assignment_is_the_nearest_center():
    z = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, 1.0], [1.0, 1.0]], **D)
    centers = torch.tensor([[0.0, 0.0], [2.0, 2.0]], **D)
    # squared distances: (5, 1), (0, 8), (10, 2), (2, 2) -> the tie goes to the lowest index
    torch.testing.assert_close(kmeans_assignment(z, centers), torch.tensor([1, 0, 1, 0]))
    # with its own assignment, each point pays the k-means cost: the loss is a minimum over s
    z, centers = _random(20, 3, seed=1), _random(4, 3, seed=2)
    best = kmeans_loss(z, centers, kmeans_assignment(z, centers), reduction="none")
    every = torch.stack([kmeans_loss(z, centers, torch.full((20,), k), reduction="none") for k in range(4)])
    torch.testing.assert_close(best, every.min(0).values)


def test_kmeans_loss_gradients_by_hand_and_gradcheck():
    z, centers = _random(7, 3, seed=3).requires_grad_(), _random(4, 3, seed=4).requires_grad_()
    s = torch.tensor([0, 1, 1, 3, 0, 0, 2])
    gz, gc = torch.autograd.grad(kmeans_loss(z, centers, s), (z, centers))
    # d/dz_i [1/n Σ ½‖z_i − μ_{s_i}‖²] = (z_i − μ_{s_i}) / n;   d/dμ_k = −Σ_{i: s_i=k} (z_i − μ_k) / n
    diff = (z - centers[s]).detach()
    torch.testing.assert_close(gz, diff / 7)
    torch.testing.assert_close(gc, -torch.zeros(4, 3, **D).index_add(0, s, diff) / 7)
    assert torch.autograd.gradcheck(lambda z_, c_: kmeans_loss(z_, c_, s, reduction="sum"), (z, centers))


def test_kmeans_loss_bad_shapes():
    with pytest.raises(ValueError, match="same d"):
        kmeans_loss(torch.zeros(3, 2), torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="one index per sample"):
        kmeans_loss(torch.zeros(3, 2), torch.zeros(2, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="assignments"):
        kmeans_loss(torch.zeros(3, 2), torch.zeros(2, 2), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="reduction"):
        kmeans_loss(torch.zeros(3, 2), torch.zeros(2, 2), torch.zeros(3, dtype=torch.long), reduction="avg")


# ----------------------------------------------------------------------------- balanced assignments


def test_balanced_assignment_loss_by_hand():
    # everything in one cluster: f = (1, 0), KL(f‖u) = 1·log(1/½) = log 2 (the maximum, log K)
    assert float(balanced_assignment_loss(torch.tensor([[1.0, 0.0], [1.0, 0.0]], **D))) == pytest.approx(math.log(2))
    # confident points, but as many in each cluster: f = (½, ½), the loss is 0
    q = torch.tensor([[0.75, 0.25], [0.25, 0.75]], **D)
    assert float(balanced_assignment_loss(q)) == pytest.approx(0.0, abs=1e-15)
    # f = ((1 + ½)/2, (0 + ½)/2) = (¾, ¼): KL = ¾ log(¾ / ½) + ¼ log(¼ / ½)
    q = torch.tensor([[1.0, 0.0], [0.5, 0.5]], **D)
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert float(balanced_assignment_loss(q)) == pytest.approx(expected, rel=1e-12)
    # K = 3, all in one: log 3
    q = torch.tensor([[0.0, 1.0, 0.0]] * 5, **D)
    assert float(balanced_assignment_loss(q)) == pytest.approx(math.log(3))


def test_balanced_assignment_loss_gradcheck_and_shape_error():
    logits = _random(6, 4, seed=5).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: balanced_assignment_loss(torch.softmax(x, 1)), (logits,))
    with pytest.raises(ValueError, match=r"\(n, K\)"):
        balanced_assignment_loss(torch.ones(4))


# ----------------------------------------------------------------------------- group sparsity


def test_group_sparsity_loss_by_hand():
    # d = 4, G = 2 groups of n_g = 2 coordinates: {0, 1} and {2, 3}
    z = torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], **D)
    # sample 0: √2·‖(3,4)‖ + √2·‖(0,0)‖ = 5√2;  sample 1: √2·0 + √2·‖(1,0)‖ = √2
    r2 = math.sqrt(2)
    torch.testing.assert_close(group_sparsity_loss(z, 2, reduction="none"), torch.tensor([5 * r2, r2], **D))
    torch.testing.assert_close(group_sparsity_loss(z, 2, reduction="sum"), torch.tensor(6 * r2, **D))
    torch.testing.assert_close(group_sparsity_loss(z, 2), torch.tensor(3 * r2, **D))  # mean over samples
    # d = 5, G = 2: contiguous groups {0,1,2} (n_g = 3) and {3,4} (n_g = 2)
    z = torch.tensor([[1.0, 2.0, 2.0, 3.0, 4.0]], **D)
    expected = math.sqrt(3) * 3.0 + math.sqrt(2) * 5.0  # ‖(1,2,2)‖ = 3, ‖(3,4)‖ = 5
    assert float(group_sparsity_loss(z, 2)) == pytest.approx(expected, rel=1e-12)
    # explicit groups: {0, 4} (n_g = 2, ‖(1,4)‖ = √17) and {1, 2, 3} (n_g = 3, ‖(2,2,3)‖ = √17)
    groups = torch.tensor([0, 1, 1, 1, 0])
    expected = (math.sqrt(2) + math.sqrt(3)) * math.sqrt(17)
    assert float(group_sparsity_loss(z, 2, groups=groups)) == pytest.approx(expected, rel=1e-12)


def test_group_sparsity_prefers_one_active_group():
    # same Euclidean norm √2, either inside one group or spread over two: the penalty is 2 vs 2√2
    one = torch.tensor([[1.0, 1.0, 0.0, 0.0]], **D)
    spread = torch.tensor([[1.0, 0.0, 1.0, 0.0]], **D)
    assert float(group_sparsity_loss(one, 2)) == pytest.approx(2.0)
    assert float(group_sparsity_loss(spread, 2)) == pytest.approx(2 * math.sqrt(2))


def test_group_sparsity_gradcheck_and_zero_group_subgradient():
    z = _random(5, 6, seed=6).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: group_sparsity_loss(x, 3), (z,))
    # a group that is exactly zero gets the zero subgradient, not NaN; the other group √n_g z/‖z‖
    z = torch.tensor([[3.0, 4.0, 0.0, 0.0]], **D, requires_grad=True)
    (grad,) = torch.autograd.grad(group_sparsity_loss(z, 2), z)
    torch.testing.assert_close(grad, torch.tensor([[0.6 * math.sqrt(2), 0.8 * math.sqrt(2), 0.0, 0.0]], **D))


def test_group_sparsity_bad_input():
    with pytest.raises(ValueError, match="non-empty groups"):
        group_sparsity_loss(torch.zeros(2, 3), 4)
    with pytest.raises(ValueError, match="groups must be"):
        group_sparsity_loss(torch.zeros(2, 3), 2, groups=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="n_clusters"):
        group_sparsity_loss(torch.zeros(2, 3), 0)


# ----------------------------------------------------------------------------- cluster classification


def test_cluster_classification_loss_by_hand():
    # logits (0, log 3): softmax = (1/4, 3/4)
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]], **D)
    labels = torch.tensor([1, 0])
    per_sample = torch.tensor([-math.log(0.75), -math.log(0.25)], **D)
    torch.testing.assert_close(cluster_classification_loss(logits, labels, reduction="none"), per_sample)
    torch.testing.assert_close(cluster_classification_loss(logits, labels), per_sample.mean())
    torch.testing.assert_close(cluster_classification_loss(logits, labels, reduction="sum"), per_sample.sum())
    # a soft pseudo-label (½, ½): ½(log 4 + log 4/3)
    soft = torch.tensor([[0.5, 0.5]], **D)
    expected = 0.5 * (math.log(4.0) + math.log(4.0 / 3.0))
    assert float(cluster_classification_loss(logits[:1], soft)) == pytest.approx(expected, rel=1e-12)
    # stable for huge logits: log-softmax, no overflow
    big = torch.tensor([[1000.0, 0.0]], **D)
    assert float(cluster_classification_loss(big, torch.tensor([0]))) == pytest.approx(0.0, abs=1e-12)
    assert float(cluster_classification_loss(big, torch.tensor([1]))) == pytest.approx(1000.0)


def test_cluster_classification_gradcheck_and_bad_shapes():
    logits = _random(6, 3, seed=7).requires_grad_()
    labels = torch.tensor([0, 2, 1, 1, 0, 2])
    assert torch.autograd.gradcheck(lambda x: cluster_classification_loss(x, labels), (logits,))
    # d/dlogits of the mean cross-entropy = (softmax − one-hot) / n
    (grad,) = torch.autograd.grad(cluster_classification_loss(logits, labels), logits)
    torch.testing.assert_close(grad, (torch.softmax(logits, 1) - torch.nn.functional.one_hot(labels, 3)).detach() / 6)
    with pytest.raises(ValueError, match="pseudo_labels"):
        cluster_classification_loss(logits, labels[:3])
    with pytest.raises(ValueError, match="logits"):
        cluster_classification_loss(torch.zeros(3), labels[:3])
