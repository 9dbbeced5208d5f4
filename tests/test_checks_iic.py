"""The lab 05 auto-checks: they fail on a stub and on plausible wrong answers, pass on the reference."""

import math

import numpy as np
import pytest
import torch

from dclib.checks_iic import brute_force_mi, check_iic_joint, check_iic_loss
from dclib.losses import iic_joint, iic_loss


def stub(*args, **kwargs):
    raise NotImplementedError()


# ----------------------------------------------------------------------------- wrong joints


def joint_not_symmetrised(p, p_aug):
    return p.t() @ p_aug / len(p)


def joint_without_division_by_n(p, p_aug):
    raw = p.t() @ p_aug
    return (raw + raw.t()) / 2


def joint_pairs_samples(p, p_aug):
    return p @ p_aug.t() / len(p)


def joint_same_view_twice(p, p_aug):
    return p.t() @ p / len(p)


def joint_elementwise(p, p_aug):
    return (p * p_aug).mean(0)


def joint_in_numpy(p, p_aug):
    a, b = p.detach().numpy(), p_aug.detach().numpy()
    raw = a.T @ b / len(a)
    return torch.as_tensor((raw + raw.T) / 2)


# ----------------------------------------------------------------------------- wrong losses


def _sym_joint(p, p_aug):
    raw = p.t() @ p_aug / len(p)
    return (raw + raw.t()) / 2


def loss_plus_mi(p, p_aug, eps=1e-8, lamb=1.0):
    return -iic_loss(p, p_aug, eps, lamb)


def loss_without_clamp(p, p_aug, eps=1e-8, lamb=1.0):
    P = _sym_joint(p, p_aug)
    return -(P * (P.log() - lamb * P.sum(1, keepdim=True).log() - lamb * P.sum(0, keepdim=True).log())).sum()


def loss_marginals_of_everything(p, p_aug, eps=1e-8, lamb=1.0):
    P = _sym_joint(p, p_aug).clamp_min(eps)
    return -(P * (P.log() - lamb * P.sum().log() - lamb * P.sum().log())).sum()


def loss_unsymmetrised(p, p_aug, eps=1e-8, lamb=1.0):
    P = (p.t() @ p_aug / len(p)).clamp_min(eps)
    return -(P * (P.log() - lamb * P.sum(1, keepdim=True).log() - lamb * P.sum(0, keepdim=True).log())).sum()


def loss_forgot_n(p, p_aug, eps=1e-8, lamb=1.0):
    raw = p.t() @ p_aug
    P = ((raw + raw.t()) / 2).clamp_min(eps)
    return -(P * (P.log() - lamb * P.sum(1, keepdim=True).log() - lamb * P.sum(0, keepdim=True).log())).sum()


def loss_ignores_lamb(p, p_aug, eps=1e-8, lamb=1.0):
    return iic_loss(p, p_aug, eps, 1.0)


def loss_lamb_on_the_joint(p, p_aug, eps=1e-8, lamb=1.0):
    P = _sym_joint(p, p_aug).clamp_min(eps)
    return -(P * (lamb * P.log() - P.sum(1, keepdim=True).log() - P.sum(0, keepdim=True).log())).sum()


def loss_as_float(p, p_aug, eps=1e-8, lamb=1.0):
    return float(iic_loss(p, p_aug, eps, lamb))


def loss_detached_view(p, p_aug, eps=1e-8, lamb=1.0):
    return iic_loss(p, p_aug.detach(), eps, lamb)


def loss_per_cluster(p, p_aug, eps=1e-8, lamb=1.0):
    P = _sym_joint(p, p_aug).clamp_min(eps)
    return -(P * (P.log() - lamb * P.sum(1, keepdim=True).log() - lamb * P.sum(0, keepdim=True).log())).sum(1)


WRONG_JOINTS = [joint_not_symmetrised, joint_without_division_by_n, joint_pairs_samples, joint_same_view_twice,
                joint_elementwise, joint_in_numpy]
WRONG_LOSSES = [loss_plus_mi, loss_without_clamp, loss_marginals_of_everything, loss_unsymmetrised, loss_forgot_n,
                loss_ignores_lamb, loss_lamb_on_the_joint, loss_as_float, loss_detached_view, loss_per_cluster]


@pytest.mark.parametrize("check, solution, wrongs", [
    (check_iic_joint, iic_joint, WRONG_JOINTS),
    (check_iic_loss, iic_loss, WRONG_LOSSES),
], ids=["joint", "loss"])
def test_check_fails_on_stub_and_wrong_answers_passes_on_reference(check, solution, wrongs, check_contract):
    check_contract(check, solution, wrongs)


def loss_marginals_as_rows(p, p_aug, eps=1e-8, lamb=1.0):
    P = _sym_joint(p, p_aug).clamp_min(eps)
    return -(P * (P.log() - lamb * P.sum(1).log() - lamb * P.sum(0).log())).sum()


def loss_detached_marginals(p, p_aug, eps=1e-8, lamb=1.0):
    P = _sym_joint(p, p_aug).clamp_min(eps)
    row, col = P.detach().sum(1, keepdim=True), P.detach().sum(0, keepdim=True)
    return -(P * (P.log() - lamb * row.log() - lamb * col.log())).sum()


def loss_log_plus_eps(p, p_aug, eps=1e-8, lamb=1.0):
    P = _sym_joint(p, p_aug)
    row, col = P.sum(1, keepdim=True), P.sum(0, keepdim=True)
    return -(P * ((P + eps).log() - lamb * (row + eps).log() - lamb * (col + eps).log())).sum()


@pytest.mark.parametrize("variant", [loss_log_plus_eps, loss_marginals_as_rows, loss_detached_marginals])
def test_equivalent_variants_are_accepted(variant, capsys):
    """Not mistakes, so the check must accept them.

    log(P + eps) guards against log 0 as well as the clamp. P is symmetric, so its two marginals are
    the same vector and Σ P_cc' log P_c = Σ P_cc' log P_c': broadcasting both as rows gives the same value.
    Detaching the marginals only drops the gradient Σ_c' P_cc' / P_c = 1, the same constant in every cell;
    Σ P = 1 whatever the logits, so a constant shift has no effect on the gradient with respect to them.
    """
    assert check_iic_loss(variant) is True


@pytest.mark.parametrize("wrong, words", [
    (joint_not_symmetrised, "symmetric"),
    (joint_without_division_by_n, "divide by the number of samples"),
    (joint_pairs_samples, "p.T @ p_aug"),
    (joint_same_view_twice, "not p.T @ p"),
    (joint_in_numpy, "gradients"),
])
def test_joint_hints_name_the_problem(wrong, words, capsys):
    check_iic_joint(wrong)
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (loss_plus_mi, "flip the sign"),
    (loss_without_clamp, "clamp"),
    (loss_marginals_of_everything, "keepdim=True"),
    (loss_unsymmetrised, "not symmetrised"),
    (loss_forgot_n, "not divided by n"),
    (loss_lamb_on_the_joint, "log-marginals only"),
    (loss_ignores_lamb, "lamb is ignored"),
    (loss_as_float, "torch tensor"),
    (loss_detached_view, "detached"),
    (loss_per_cluster, "0-dim"),
])
def test_loss_hints_name_the_problem(wrong, words, capsys):
    check_iic_loss(wrong)
    assert words in capsys.readouterr().out


def test_brute_force_mi_agrees_with_the_library_and_its_extremes():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(12, 3, generator=g, dtype=torch.float64), 1)
    q = torch.softmax(torch.randn(12, 3, generator=g, dtype=torch.float64), 1)
    mi, joint = brute_force_mi(p, q)
    np.testing.assert_allclose(joint, iic_joint(p, q).numpy())
    assert -float(iic_loss(p, q, eps=1e-300)) == pytest.approx(mi, rel=1e-12)
    eye = torch.eye(4, dtype=torch.float64).repeat(5, 1)
    assert brute_force_mi(eye, eye)[0] == pytest.approx(math.log(4))
