"""The lab 10 auto-checks: they fail on a stub and on plausible wrong answers, pass on the reference."""

import math

import numpy as np
import pytest
import torch

from dclib.checks_adversarial import (
    brute_force_mi_table,
    check_info_lower_bound,
    check_mutual_information,
    toy_counts,
    toy_rows,
)
from dclib.losses import info_lower_bound


def mutual_information(joint):
    pc, px = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
    return torch.xlogy(joint, joint / (pc * px)).sum()


def mi_without_zero_handling(joint):
    pc, px = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
    return (joint * (joint / (pc * px)).log()).sum()


def mi_entropy_of_joint(joint):
    return -torch.xlogy(joint, joint).sum()


def mi_in_bits(joint):
    return mutual_information(joint) / math.log(2)


def mi_negative(joint):
    return -mutual_information(joint)


def mi_per_code(joint):
    pc, px = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
    return torch.xlogy(joint, joint / (pc * px)).sum(1)


def reference_bound(q_logits, codes, prior):
    return info_lower_bound(q_logits, codes, prior)


def _log_q(q_logits, codes):
    return torch.log_softmax(q_logits, 1).gather(1, codes[:, None]).squeeze(1)


def _entropy(prior):
    return -(prior * prior.log()).sum()


def bound_without_entropy(q_logits, codes, prior):
    return _log_q(q_logits, codes).mean()


def bound_negated(q_logits, codes, prior):
    return -(_log_q(q_logits, codes).mean() + _entropy(prior))


def bound_uniform_entropy(q_logits, codes, prior):
    return _log_q(q_logits, codes).mean() + math.log(q_logits.shape[1])


def bound_sum(q_logits, codes, prior):
    return _log_q(q_logits, codes).sum() + _entropy(prior)


def bound_probabilities(q_logits, codes, prior):
    return torch.softmax(q_logits, 1).gather(1, codes[:, None]).mean() + _entropy(prior)


def bound_argmax(q_logits, codes, prior):
    return torch.log_softmax(q_logits, 1).max(1).values.mean() + _entropy(prior)


def bound_raw_logits(q_logits, codes, prior):
    return q_logits.gather(1, codes[:, None]).mean() + _entropy(prior)


def bound_as_float(q_logits, codes, prior):
    return float(reference_bound(q_logits, codes, prior))


def bound_per_sample(q_logits, codes, prior):
    return _log_q(q_logits, codes) + _entropy(prior)


def bound_log_of_softmax(q_logits, codes, prior):  # a correct value where nothing underflows: accepted
    return torch.softmax(q_logits, 1).gather(1, codes[:, None]).log().mean() + _entropy(prior)


WRONG_MI = [mi_without_zero_handling, mi_entropy_of_joint, mi_in_bits, mi_negative, mi_per_code]
WRONG_BOUNDS = [bound_without_entropy, bound_negated, bound_uniform_entropy, bound_sum, bound_probabilities,
                bound_argmax, bound_raw_logits, bound_as_float, bound_per_sample]


@pytest.mark.parametrize("check, solution, wrongs", [
    (check_mutual_information, mutual_information, WRONG_MI),
    (check_info_lower_bound, reference_bound, WRONG_BOUNDS),
], ids=["mi", "bound"])
def test_check_fails_on_stub_and_wrong_answers_passes_on_reference(check, solution, wrongs, check_contract):
    check_contract(check, solution, wrongs)


def test_log_of_softmax_is_accepted_on_these_cases():
    assert check_info_lower_bound(bound_log_of_softmax) is True


@pytest.mark.parametrize("wrong, words", [
    (bound_without_entropy, "H(c) is missing"),
    (bound_negated, "sign is flipped"),
    (bound_uniform_entropy, "not log K"),
    (bound_sum, "not a sum"),
    (bound_probabilities, "take the log"),
    (bound_argmax, "gather with the codes"),
    (bound_raw_logits, "log_softmax"),
    (bound_as_float, "torch tensor"),
    (bound_per_sample, "0-dim"),
])
def test_bound_hints_name_the_problem(wrong, words, capsys):
    check_info_lower_bound(wrong)
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (mi_without_zero_handling, "NaN"),
    (mi_entropy_of_joint, "entropy"),
    (mi_in_bits, "bits"),
    (mi_negative, "sign"),
    (mi_per_code, "one number"),
])
def test_mi_hints_name_the_problem(wrong, words, capsys):
    check_mutual_information(wrong)
    assert words in capsys.readouterr().out


def test_toy_rows_make_the_sample_mean_exact():
    counts = toy_counts(0)
    joint = counts / counts.sum()
    posterior = (counts / counts.sum(0, keepdims=True)).T
    logits, codes, prior = toy_rows(counts, posterior)
    assert len(codes) == counts.sum() == 60
    np.testing.assert_allclose(prior.numpy(), joint.sum(1))
    assert float(info_lower_bound(logits, codes, prior)) == pytest.approx(brute_force_mi_table(joint), rel=1e-12)
    assert brute_force_mi_table(np.eye(3) / 3) == pytest.approx(math.log(3))
