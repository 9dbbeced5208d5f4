"""The lab 08 auto-checks: they fail on a stub and on plausible wrong answers, pass on the reference."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dclib.checks_discriminative import (
    HAND_SIM,
    brute_force_vat_eigvec,
    check_conditional_entropy,
    check_dac_loss,
    check_dac_pair_labels,
    check_marginal_entropy,
    check_vat_direction,
)
from dclib.losses import (
    _kl_logits,
    _unit,
    conditional_entropy,
    dac_loss,
    dac_pair_labels,
    dac_similarity,
    marginal_entropy,
    vat_direction,
)

# ----------------------------------------------------------------------------- entropies


def h_marg_naive_log(p):  # NaN when a cluster is unused
    m = p.mean(0)
    return -(m * m.log()).sum()


def h_marg_is_conditional(p):
    return conditional_entropy(p)


def h_marg_sum_not_mean(p):
    m = p.sum(0)
    return -torch.xlogy(m, m).sum()


def h_marg_wrong_sign(p):
    return -marginal_entropy(p)


def h_marg_log2(p):
    m = p.mean(0)
    return -(m * torch.log2(m.clamp_min(1e-300))).sum()


def h_marg_per_cluster(p):
    m = p.mean(0)
    return -torch.xlogy(m, m)


def h_marg_numpy(p):
    m = p.detach().numpy().mean(0)
    return torch.as_tensor(-(m * np.log(np.clip(m, 1e-300, None))).sum())


def h_cond_naive_log(p):
    return -(p * p.log()).sum(1).mean()


def h_cond_sum_over_samples(p):
    return -torch.xlogy(p, p).sum()


def h_cond_mean_over_everything(p):
    return -torch.xlogy(p, p).mean()


def h_cond_is_marginal(p):
    return marginal_entropy(p)


def h_cond_wrong_sign(p):
    return torch.xlogy(p, p).sum(1).mean()


def h_cond_per_sample(p):
    return -torch.xlogy(p, p).sum(1)


def h_cond_detached(p):
    return -torch.xlogy(p, p.detach()).sum(1).mean() * 0 + conditional_entropy(p.detach())


# ----------------------------------------------------------------------------- VAT


def _xi(xi, x):
    xi = torch.as_tensor(xi, dtype=x.dtype)
    return xi.reshape(-1, *([1] * (x.dim() - 1))) if xi.dim() == 1 else xi


def vat_reference(model, x, d0, xi, n_power=1):
    xi = _xi(xi, x)
    with torch.no_grad():
        log_p = torch.log_softmax(model(x), 1)
    d = _unit(d0)
    for _ in range(n_power):
        d.requires_grad_(True)
        (g,) = torch.autograd.grad(_kl_logits(log_p, model(x + xi * d)).sum(), d)
        d = _unit(g.detach())
    return d


def _vat_variant(unit=_unit, reverse=False, start_unit=True, one_step=False, backward=False, sign=1.0):
    def fn(model, x, d0, xi, n_power=1):
        xi_t = _xi(xi, x)
        with torch.no_grad():
            log_p = torch.log_softmax(model(x), 1)
        d = _unit(d0) if start_unit else d0
        for _ in range(1 if one_step else n_power):
            d = d.detach().requires_grad_(True)
            logits = model(x + xi_t * d)
            if reverse:
                log_q = torch.log_softmax(logits, 1)
                kl = (log_q.exp() * (log_q - log_p)).sum()
            else:
                kl = _kl_logits(log_p, logits).sum()
            if backward:
                kl.backward()
                g = d.grad
            else:
                (g,) = torch.autograd.grad(kl, d)
            d = sign * unit(g.detach())
        return d.detach()

    return fn


vat_batch_norm = _vat_variant(unit=lambda g: g / g.norm())
vat_norm_dim1 = _vat_variant(unit=lambda g: g / g.norm(dim=1, keepdim=True))
vat_unnormalised = _vat_variant(unit=lambda g: g)
vat_d0_not_unit = _vat_variant(start_unit=False)
vat_reverse_kl = _vat_variant(reverse=True)
vat_one_step_only = _vat_variant(one_step=True)
vat_wrong_sign = _vat_variant(sign=-1.0)
vat_backward_on_model = _vat_variant(backward=True)


# ----------------------------------------------------------------------------- DAC


def pairs_with_diagonal(sim, upper, lower):
    positive, negative = sim > upper, sim < lower
    return positive.to(sim.dtype), positive | negative


def pairs_swapped(sim, upper, lower):
    target, selected = dac_pair_labels(sim, upper, lower)
    return 1 - target, selected


def pairs_positive_only(sim, upper, lower):
    target, selected = dac_pair_labels(sim, upper, lower)
    return target, selected & (target > 0)


def pairs_not_strict(sim, upper, lower):
    off = ~torch.eye(len(sim), dtype=torch.bool)
    return (sim >= upper).to(sim.dtype), ((sim >= upper) | (sim <= lower)) & off


def pairs_inverted_mask(sim, upper, lower):
    off = ~torch.eye(len(sim), dtype=torch.bool)
    return (sim > upper).to(sim.dtype), (sim > lower) & (sim < upper) & off


def pairs_bool_target(sim, upper, lower):
    target, selected = dac_pair_labels(sim, upper, lower)
    return target.bool(), selected


def pairs_float_mask(sim, upper, lower):
    target, selected = dac_pair_labels(sim, upper, lower)
    return target, selected.to(sim.dtype)


def dac_loss_naive_bce(p, upper, lower):  # 0 · log 0 = NaN on exact zeros/ones
    sim = dac_similarity(p)
    target, selected = dac_pair_labels(sim, upper, lower)
    bce = -(target * sim.log() + (1 - target) * (1 - sim).log())
    return (bce * selected).sum() / selected.sum().clamp_min(1)


def dac_loss_sum(p, upper, lower):
    return dac_loss(p, upper, lower) * dac_pair_labels(dac_similarity(p), upper, lower)[1].sum()


def dac_loss_mean_over_all_pairs(p, upper, lower):
    return dac_loss(p, upper, lower) * dac_pair_labels(dac_similarity(p), upper, lower)[1].sum() / len(p) ** 2


def dac_loss_unnormalised_similarity(p, upper, lower):
    sim = p @ p.t()
    target, selected = dac_pair_labels(sim, upper, lower)
    return F.binary_cross_entropy(sim[selected], target[selected]) if selected.any() else sim.sum() * 0


def dac_loss_with_diagonal(p, upper, lower):
    sim = dac_similarity(p)
    selected = (sim > upper) | (sim < lower)
    target = (sim > upper).to(sim.dtype)
    return F.binary_cross_entropy(sim[selected].clamp(0, 1), target[selected])


def dac_loss_negated(p, upper, lower):
    return -dac_loss(p, upper, lower)


def dac_loss_empty_mean(p, upper, lower):  # NaN when nothing is selected
    sim = dac_similarity(p)
    target, selected = dac_pair_labels(sim, upper, lower)
    return F.binary_cross_entropy(sim[selected].clamp(0, 1), target[selected])


def dac_loss_detached(p, upper, lower):
    return dac_loss(p.detach(), upper, lower)


def dac_loss_bce_reference(p, upper, lower):  # an equivalent formulation: must be accepted
    sim = dac_similarity(p)
    target, selected = dac_pair_labels(sim, upper, lower)
    if not selected.any():
        return sim.sum() * 0
    return F.binary_cross_entropy(sim[selected].clamp(0, 1), target[selected])


def dac_loss_two_view_reference(p, upper, lower):
    return dac_loss(p, upper, lower, p_labels=p)


WRONG = {
    "marginal": [h_marg_naive_log, h_marg_is_conditional, h_marg_sum_not_mean, h_marg_wrong_sign, h_marg_log2,
                 h_marg_per_cluster, h_marg_numpy],
    "conditional": [h_cond_naive_log, h_cond_sum_over_samples, h_cond_mean_over_everything, h_cond_is_marginal,
                    h_cond_wrong_sign, h_cond_per_sample, h_cond_detached],
    "vat": [vat_batch_norm, vat_norm_dim1, vat_unnormalised, vat_d0_not_unit, vat_reverse_kl, vat_one_step_only,
            vat_wrong_sign, vat_backward_on_model],
    "pairs": [pairs_with_diagonal, pairs_swapped, pairs_positive_only, pairs_not_strict, pairs_inverted_mask,
              pairs_bool_target, pairs_float_mask],
    "loss": [dac_loss_naive_bce, dac_loss_sum, dac_loss_mean_over_all_pairs, dac_loss_unnormalised_similarity,
             dac_loss_with_diagonal, dac_loss_negated, dac_loss_empty_mean, dac_loss_detached],
}


@pytest.mark.parametrize("check, solution, key", [
    (check_marginal_entropy, marginal_entropy, "marginal"),
    (check_conditional_entropy, conditional_entropy, "conditional"),
    (check_vat_direction, vat_reference, "vat"),
    (check_dac_pair_labels, dac_pair_labels, "pairs"),
    (check_dac_loss, dac_loss, "loss"),
], ids=["marginal", "conditional", "vat", "pairs", "loss"])
def test_check_fails_on_stub_and_wrong_answers_passes_on_reference(check, solution, key, check_contract):
    check_contract(check, solution, WRONG[key])


@pytest.mark.parametrize("check, variant", [
    (check_dac_loss, dac_loss_bce_reference),
    (check_dac_loss, dac_loss_two_view_reference),
    (check_marginal_entropy, lambda p: -(p.mean(0) * p.mean(0).clamp_min(1e-300).log()).sum()),
    (check_conditional_entropy, lambda p: -(p * p.clamp_min(1e-300).log()).sum(1).mean()),
])
def test_equivalent_variants_are_accepted(check, variant):
    """F.binary_cross_entropy on the selected pairs (it clamps the log at −100, never reached by selected
    pairs) and clamping p before the log (0 · log ε = 0) are correct answers."""
    assert check(variant) is True


@pytest.mark.parametrize("check, wrong, words", [
    (check_marginal_entropy, h_marg_naive_log, "xlogy"),
    (check_marginal_entropy, h_marg_is_conditional, "averaged"),
    (check_marginal_entropy, h_marg_sum_not_mean, "p.mean(dim=0)"),
    (check_marginal_entropy, h_marg_log2, "base 2"),
    (check_marginal_entropy, h_marg_per_cluster, "0-dim"),
    (check_conditional_entropy, h_cond_sum_over_samples, "sum over the samples"),
    (check_conditional_entropy, h_cond_mean_over_everything, "n·K entries"),
    (check_conditional_entropy, h_cond_is_marginal, "mean over i"),
    (check_conditional_entropy, h_cond_detached, "gradients"),
    (check_vat_direction, vat_batch_norm, "whole batch"),
    (check_vat_direction, vat_norm_dim1, "dim=1 only"),
    (check_vat_direction, vat_unnormalised, "without normalising"),
    (check_vat_direction, vat_d0_not_unit, "d0 is not normalised"),
    (check_vat_direction, vat_reverse_kl, "other direction"),
    (check_vat_direction, vat_one_step_only, "n_power is ignored"),
    (check_vat_direction, vat_wrong_sign, "wrong sign"),
    (check_vat_direction, vat_backward_on_model, "autograd.grad"),
    (check_dac_pair_labels, pairs_with_diagonal, "diagonal"),
    (check_dac_pair_labels, pairs_swapped, "swapped"),
    (check_dac_pair_labels, pairs_positive_only, "dissimilar ones"),
    (check_dac_pair_labels, pairs_not_strict, "strict"),
    (check_dac_pair_labels, pairs_inverted_mask, "inverted"),
    (check_dac_pair_labels, pairs_bool_target, "0.0/1.0 floats"),
    (check_dac_pair_labels, pairs_float_mask, "boolean mask"),
    (check_dac_loss, dac_loss_naive_bce, "NaN"),
    (check_dac_loss, dac_loss_sum, "sum over the selected"),
    (check_dac_loss, dac_loss_mean_over_all_pairs, "all n² pairs"),
    (check_dac_loss, dac_loss_unnormalised_similarity, "normalised"),
    (check_dac_loss, dac_loss_with_diagonal, "diagonal"),
    (check_dac_loss, dac_loss_negated, "≥ 0"),
    (check_dac_loss, dac_loss_empty_mean, "no pair is selected"),
    (check_dac_loss, dac_loss_detached, "gradients"),
])
def test_hints_name_the_problem(check, wrong, words, capsys):
    assert check(wrong) is False
    assert words in capsys.readouterr().out


def test_brute_force_eigenvector_agrees_with_the_closed_form_hessian():
    """For linear logits z = W x + b the Hessian of the KL at r = 0 is Wᵀ (diag p − p pᵀ) W."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    vecs, vals = brute_force_vat_eigvec(model, x)
    W = model.weight.detach()
    for i, x_i in enumerate(x):
        p = torch.softmax(model(x_i[None]), 1)[0].detach()
        H = W.t() @ (torch.diag(p) - torch.outer(p, p)) @ W
        w, v = torch.linalg.eigh(H)
        torch.testing.assert_close(vals[i], w)
        assert abs(float(v[:, -1] @ vecs[i])) == pytest.approx(1.0, abs=1e-10)
    d = vat_direction(model, x, 1e-4, 50, generator=torch.Generator().manual_seed(1))
    assert ((d * vecs).sum(1).abs() > 1 - 1e-6).all()


def test_hand_similarity_matrix_is_symmetric_with_unit_diagonal():
    assert torch.equal(HAND_SIM, HAND_SIM.t()) and (HAND_SIM.diagonal() == 1).all()
    assert math.isclose(float(HAND_SIM.max()), 1.0)
