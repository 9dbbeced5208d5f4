"""IMSAT, DAC and DEPICT losses: entropies against hand values, VAT's direction against the exact
Hessian, DAC's pair selection on a hand-made matrix, DEPICT's balancing target."""

import math

import pytest
import torch

from dclib.losses import (
    conditional_entropy,
    dac_loss,
    dac_pair_labels,
    dac_similarity,
    dac_thresholds,
    depict_target,
    marginal_entropy,
    vat_direction,
    vat_loss,
)


def _probs(n, k, seed, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(n, k, generator=g, dtype=torch.float64), 1)


# ----------------------------------------------------------------------------- entropies


def test_entropies_hand_values():
    K = 5
    uniform = torch.full((7, K), 1 / K, dtype=torch.float64)
    assert float(marginal_entropy(uniform)) == pytest.approx(math.log(K))
    assert float(conditional_entropy(uniform)) == pytest.approx(math.log(K))
    onehot = torch.nn.functional.one_hot(torch.arange(10) % K, K).double()
    assert float(conditional_entropy(onehot)) == 0.0
    assert float(marginal_entropy(onehot)) == pytest.approx(math.log(K))  # balanced one-hot clusters
    collapsed = torch.nn.functional.one_hot(torch.zeros(10, dtype=torch.long), K).double()
    assert float(marginal_entropy(collapsed)) == 0.0
    # 2x2 by hand: rows (0.5, 0.5) and (1, 0): H(Y|X) = (log 2 + 0)/2, p̄ = (0.75, 0.25)
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    assert float(conditional_entropy(p)) == pytest.approx(math.log(2) / 2)
    assert float(marginal_entropy(p)) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_log_space_versions_agree_and_have_finite_gradients():
    logits = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    p, log_p = torch.softmax(logits, 1), torch.log_softmax(logits, 1)
    assert float(marginal_entropy(p, log_p)) == pytest.approx(float(marginal_entropy(p)), rel=1e-12)
    assert float(conditional_entropy(p, log_p)) == pytest.approx(float(conditional_entropy(p)), rel=1e-12)
    # float32 logits so extreme that p underflows to exactly 0: values and gradients stay finite
    extreme = torch.tensor([[200.0, -200.0, 0.0], [-200.0, 200.0, 0.0]], requires_grad=True)
    q, log_q = torch.softmax(extreme, 1), torch.log_softmax(extreme, 1)
    assert (q == 0).any()
    (conditional_entropy(q, log_q) - marginal_entropy(q, log_q)).backward()
    assert torch.isfinite(extreme.grad).all()


@pytest.mark.parametrize("fn", [marginal_entropy, conditional_entropy])
def test_entropy_gradcheck_float64(fn):
    logits = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: fn(torch.softmax(z, 1)), (logits,))
    assert torch.autograd.gradcheck(lambda z: fn(torch.softmax(z, 1), torch.log_softmax(z, 1)), (logits,))


# ----------------------------------------------------------------------------- VAT


def _kl_hessian(model, x_i):
    """Exact Hessian of r -> KL(p(x_i) || p(x_i + r)) at r = 0 for one sample."""
    log_p = torch.log_softmax(model(x_i[None]), 1).detach()

    def kl(r):
        return (log_p.exp() * (log_p - torch.log_softmax(model((x_i + r)[None]), 1))).sum()

    return torch.autograd.functional.hessian(kl, torch.zeros_like(x_i))


def test_vat_direction_is_the_dominant_eigenvector_of_the_kl_hessian():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    d = vat_direction(model, x, xi=1e-6, n_power=60, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(d.norm(dim=1), torch.ones(5, dtype=torch.float64))
    for i in range(len(x)):
        H = _kl_hessian(model, x[i])
        eigvals, eigvecs = torch.linalg.eigh(H)
        assert eigvals[-1] > 1.2 * eigvals[-2], "test needs an eigen-gap"
        assert abs(float(d[i] @ eigvecs[:, -1])) > 0.99
    # one power step from a random start already leans towards it, and a random direction does not
    d1 = vat_direction(model, x, xi=1e-6, n_power=1, generator=torch.Generator().manual_seed(3))
    r = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    r = r / r.norm(dim=1, keepdim=True)
    quad = lambda v, i: float(v @ _kl_hessian(model, x[i]) @ v)  # noqa: E731
    assert sum(quad(d1[i], i) for i in range(5)) > sum(quad(r[i], i) for i in range(5))


def test_vat_loss_value_and_per_sample_eps():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    d = vat_direction(model, x, xi=1e-6, n_power=5, generator=gen())
    eps = torch.linspace(0.1, 1.0, 5, dtype=torch.float64)
    log_p = torch.log_softmax(model(x), 1)
    log_q = torch.log_softmax(model(x + eps[:, None] * d), 1)
    expected = (log_p.exp() * (log_p - log_q)).sum(1).mean()
    loss = vat_loss(model, x, xi=1e-6, eps=eps, n_power=5, generator=gen())
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-10)
    # the adversarial direction hurts more than a random one of the same size
    r = torch.randn(5, 6, dtype=torch.float64, generator=gen())
    r = r / r.norm(dim=1, keepdim=True)
    log_r = torch.log_softmax(model(x + eps[:, None] * r), 1)
    assert float(loss.detach()) > float((log_p.exp() * (log_p - log_r)).sum(1).mean().detach())
    # gradients reach the model but not through p(x) (detached): zero at a model that ignores x
    loss.backward()
    assert model.weight.grad is not None and torch.isfinite(model.weight.grad).all()
    with pytest.raises(ValueError, match="one radius per sample"):
        vat_loss(model, x, xi=1e-6, eps=torch.ones(3, dtype=torch.float64))


def test_vat_does_not_touch_batchnorm_running_stats():
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    net.train()
    before = net[1].running_mean.clone()
    vat_loss(net, torch.randn(16, 4), xi=1.0, eps=0.5, n_power=2).backward()
    assert torch.equal(net[1].running_mean, before) and net[1].track_running_stats


# ----------------------------------------------------------------------------- DAC


def test_dac_similarity_is_cosine_in_unit_interval():
    p = _probs(8, 4, 0)
    sim = dac_similarity(p)
    torch.testing.assert_close(torch.diagonal(sim), torch.ones(8, dtype=torch.float64))
    assert sim.min() >= 0 and sim.max() <= 1 + 1e-12
    torch.testing.assert_close(sim[1, 2], torch.nn.functional.cosine_similarity(p[1], p[2], dim=0))


def test_dac_pair_selection_on_a_hand_made_matrix():
    sim = torch.tensor([
        [1.00, 0.97, 0.30, 0.60],
        [0.97, 1.00, 0.50, 0.10],
        [0.30, 0.50, 1.00, 0.96],
        [0.60, 0.10, 0.96, 1.00],
    ])
    target, selected = dac_pair_labels(sim, upper=0.95, lower=0.455)
    expected_selected = torch.tensor([
        [0, 1, 1, 0],
        [1, 0, 0, 1],
        [1, 0, 0, 1],
        [0, 1, 1, 0],
    ], dtype=torch.bool)
    assert torch.equal(selected, expected_selected)
    assert torch.equal(target[selected], torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]))
    # looser thresholds select more pairs: 0.5 and 0.6 become negatives when l = 0.65
    _, looser = dac_pair_labels(sim, upper=0.9, lower=0.65)
    assert looser.sum() == 12 and (looser | ~selected).all()
    with pytest.raises(ValueError, match="must not exceed"):
        dac_pair_labels(sim, upper=0.4, lower=0.5)


def test_dac_thresholds_tighten_and_meet():
    u0, l0 = dac_thresholds(0.0)
    assert (u0, l0) == (0.95, 0.455)
    u1, l1 = dac_thresholds(0.2)
    assert u1 < u0 and l1 > l0
    u, lo = dac_thresholds(0.45)
    assert u == pytest.approx(lo)


def test_dac_loss_equals_hand_bce_and_has_finite_gradients():
    logits = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    p = torch.softmax(3 * logits, 1)
    upper, lower = 0.9, 0.5
    sim = dac_similarity(p)
    loss = dac_loss(p, upper, lower)
    terms = []
    for i in range(6):
        for j in range(6):
            s = float(sim[i, j])
            if i != j and s > upper:
                terms.append(-math.log(s))
            elif i != j and s < lower:
                terms.append(-math.log(1 - s))
    assert terms, "the random case must select some pairs"
    assert float(loss) == pytest.approx(sum(terms) / len(terms), rel=1e-12)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    # one-hot predictions of the same cluster have g = 1 (a positive, loss 0), of different ones g = 0
    onehot = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 2]), 3).double()
    assert float(dac_loss(onehot, 0.95, 0.455)) == pytest.approx(0.0, abs=1e-6)  # up to the 1e-7 clip
    uniform = torch.full((3, 3), 1 / 3, dtype=torch.float64)  # all pairs g = 1: all "similar", nothing wrong
    assert float(dac_loss(uniform, 0.95, 0.455)) == pytest.approx(0.0, abs=1e-6)


def test_dac_loss_stays_finite_when_the_other_view_disagrees_completely():
    """Labels from the clean view, loss on an augmented one: a pair labelled "similar" whose augmented
    outputs are orthogonal one-hots has g = 0 exactly (and a "dissimilar" pair g = 1); the clip keeps
    the loss finite and at Keras' value -log(1e-7) per such pair instead of infinite."""
    clean = torch.nn.functional.one_hot(torch.tensor([0, 0, 1]), 3).double()  # pair (0, 1) similar, others not
    augmented = torch.nn.functional.one_hot(torch.tensor([0, 2, 0]), 3).double()  # (0, 1): g = 0; (0, 2): g = 1
    loss = dac_loss(augmented, 0.95, 0.455, p_labels=clean)
    assert torch.isfinite(loss)
    # 6 selected ordered pairs: (0,1),(1,0) similar with g = 0; (0,2),(2,0) dissimilar with g = 1; (1,2),(2,1) fine
    assert float(loss) == pytest.approx(4 * -math.log(1e-7) / 6, rel=1e-3)


def test_dac_loss_gradcheck_with_fixed_selection():
    p_labels = _probs(5, 3, 5, scale=3.0)
    logits = torch.log(p_labels).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: dac_loss(torch.softmax(z, 1), 0.9, 0.5, p_labels=p_labels), (logits,))


# ----------------------------------------------------------------------------- DEPICT


def test_depict_target_formula_rows_and_balancing():
    q = _probs(40, 3, 6)
    p = depict_target(q)
    torch.testing.assert_close(p.sum(1), torch.ones(40, dtype=torch.float64))
    by_hand = q / q.sum(0).sqrt()
    torch.testing.assert_close(p, by_hand / by_hand.sum(1, keepdim=True))
    # skewed q: cluster 0 takes most points, many of them only just; the target moves those borderline
    # points to the smaller clusters, so argmax cluster sizes are more balanced than q's
    g = torch.Generator().manual_seed(0)
    big = torch.softmax(torch.randn(300, 3, generator=g, dtype=torch.float64) * 0.3 + torch.tensor([0.6, 0, 0]), 1)
    small = torch.softmax(torch.randn(60, 3, generator=g, dtype=torch.float64) + torch.tensor([0, 2.0, 2.0]), 1)
    q = torch.cat([big, small])
    sizes_q = torch.bincount(q.argmax(1), minlength=3).double()
    sizes_p = torch.bincount(depict_target(q).argmax(1), minlength=3).double()
    entropy = lambda s: float(-(s / s.sum() * torch.log(s / s.sum())).sum())  # noqa: E731
    assert sizes_q.max() > 0.6 * len(q)
    assert sizes_p.max() < sizes_q.max() and entropy(sizes_p) > entropy(sizes_q) + 0.1
    # the soft sizes are more balanced too, and a balanced q is left as it is
    assert float(marginal_entropy(depict_target(q))) > float(marginal_entropy(q))
    balanced = torch.eye(3, dtype=torch.float64).repeat(4, 1) * 0.7 + 0.1
    torch.testing.assert_close(depict_target(balanced), balanced)
