"""The lab 11 auto-checks: they fail on a stub and on plausible wrong answers, pass on the reference."""

import numpy as np
import pytest
import torch

from dclib.checks_structure import brute_force_pairwise, check_embedding_cross_entropy, check_pairwise_student_t
from dclib.losses import embedding_cross_entropy, pairwise_student_t


def _d2(z):
    return ((z[:, None] - z[None]) ** 2).sum(-1)


def _normalise_off_diagonal(kern):
    kern = kern * (1 - torch.eye(len(kern), dtype=kern.dtype))
    return kern / kern.sum()


# ----------------------------------------------------------------------------- wrong affinities


def affinity_with_diagonal(z, alpha):
    kern = (1 + _d2(z) / alpha) ** (-(alpha + 1) / 2)
    return kern / kern.sum()


def affinity_row_normalised(z, alpha):
    kern = ((1 + _d2(z) / alpha) ** (-(alpha + 1) / 2)) * (1 - torch.eye(len(z), dtype=z.dtype))
    return kern / kern.sum(1, keepdim=True)


def affinity_naive_exp(z, alpha):  # right maths, but the kernels underflow in float32
    return _normalise_off_diagonal((1 + _d2(z) / alpha) ** (-(alpha + 1) / 2))


def affinity_wrong_exponent(z, alpha):
    return _normalise_off_diagonal((1 + _d2(z) / alpha) ** (-alpha / 2))


def affinity_without_alpha(z, alpha):
    return _normalise_off_diagonal((1 + _d2(z)) ** (-(alpha + 1) / 2))


def affinity_in_numpy(z, alpha):
    return torch.as_tensor(brute_force_pairwise(z.detach().numpy(), alpha), dtype=z.dtype)


# ----------------------------------------------------------------------------- wrong cross-entropies


def ce_swapped(z, e, alpha_z=None, alpha_e=1.0):
    return embedding_cross_entropy(e, z, alpha_e, 2.0 * z.shape[1] if alpha_z is None else alpha_z)


def ce_plus_sign(z, e, alpha_z=None, alpha_e=1.0):
    return -embedding_cross_entropy(z, e, alpha_z, alpha_e)


def ce_alpha_dim(z, e, alpha_z=None, alpha_e=1.0):
    return embedding_cross_entropy(z, e, float(z.shape[1]) if alpha_z is None else alpha_z, alpha_e)


def ce_with_diagonal(z, e, alpha_z=None, alpha_e=1.0):
    p = pairwise_student_t(z, 2.0 * z.shape[1] if alpha_z is None else alpha_z)
    return -(p * pairwise_student_t(e, alpha_e).log()).sum()


def ce_mean(z, e, alpha_z=None, alpha_e=1.0):
    p = pairwise_student_t(z, 2.0 * z.shape[1] if alpha_z is None else alpha_z)
    log_q = pairwise_student_t(e, alpha_e, log=True)
    off = ~torch.eye(len(z), dtype=torch.bool)
    return -(p[off] * log_q[off]).mean()


def ce_ignores_alphas(z, e, alpha_z=None, alpha_e=1.0):
    return embedding_cross_entropy(z, e)


def ce_detached(z, e, alpha_z=None, alpha_e=1.0):
    return embedding_cross_entropy(z, e.detach(), alpha_z, alpha_e)


def ce_per_row(z, e, alpha_z=None, alpha_e=1.0):
    p = pairwise_student_t(z, 2.0 * z.shape[1] if alpha_z is None else alpha_z)
    log_q = pairwise_student_t(e, alpha_e, log=True).masked_fill(torch.eye(len(z), dtype=torch.bool), 0)
    return -(p * log_q).sum(1)


WRONG_AFFINITIES = [affinity_with_diagonal, affinity_row_normalised, affinity_naive_exp, affinity_wrong_exponent,
                    affinity_without_alpha, affinity_in_numpy]
WRONG_CES = [ce_swapped, ce_plus_sign, ce_alpha_dim, ce_with_diagonal, ce_mean, ce_ignores_alphas, ce_detached,
             ce_per_row]


@pytest.mark.parametrize("check, solution, wrongs", [
    (check_pairwise_student_t, pairwise_student_t, WRONG_AFFINITIES),
    (check_embedding_cross_entropy, embedding_cross_entropy, WRONG_CES),
], ids=["affinity", "cross_entropy"])
def test_check_fails_on_stub_and_wrong_answers_passes_on_reference(check, solution, wrongs, check_contract):
    check_contract(check, solution, wrongs)


@pytest.mark.parametrize("wrong, words", [
    (affinity_with_diagonal, "diagonal"),
    (affinity_row_normalised, "row by row"),
    (affinity_naive_exp, "logsumexp"),
    (affinity_wrong_exponent, "−(α+1)/2"),
    (affinity_without_alpha, "divide the squared distance by α"),
    (affinity_in_numpy, "gradients"),
])
def test_affinity_hints_name_the_problem(wrong, words, capsys):
    check_pairwise_student_t(wrong)
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (ce_swapped, "swapped"),
    (ce_plus_sign, "sign"),
    (ce_alpha_dim, "2·dim(z), not dim(z)"),
    (ce_with_diagonal, "off-diagonal"),
    (ce_mean, "mean over pairs"),
    (ce_ignores_alphas, "alphas you are given"),
    (ce_detached, "detached"),
    (ce_per_row, "0-dim"),
])
def test_cross_entropy_hints_name_the_problem(wrong, words, capsys):
    check_embedding_cross_entropy(wrong)
    assert words in capsys.readouterr().out


def test_brute_force_pairwise_agrees_with_the_library():
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    np.testing.assert_allclose(brute_force_pairwise(z, 4.0), pairwise_student_t(z, 4.0).numpy(), rtol=1e-12)
