"""The lab 06 auto-checks: they fail on a stub and on plausible wrong answers, pass on the reference."""

import pytest
import torch

from dclib.checks_dcn import _sequential_update, check_kmeans_loss, check_update_centroids
from dclib.losses import kmeans_assignment, kmeans_loss
from dclib.methods.dcn import update_centroids


def stub(*args, **kwargs):
    raise NotImplementedError()


# ----------------------------------------------------------------------------- wrong k-means terms


def loss_without_half(z, centers, s):
    return (z - centers[s]).pow(2).sum(1).mean()


def loss_summed_over_batch(z, centers, s):
    return 0.5 * (z - centers[s]).pow(2).sum()


def loss_mean_over_coordinates(z, centers, s):
    return 0.5 * (z - centers[s]).pow(2).mean()


def loss_not_squared(z, centers, s):
    return 0.5 * (z - centers[s]).norm(dim=1).mean()


def loss_nearest_centroid(z, centers, s):
    return 0.5 * (z - centers[kmeans_assignment(z, centers)]).pow(2).sum(1).mean()


def loss_per_sample(z, centers, s):
    return 0.5 * (z - centers[s]).pow(2).sum(1)


def loss_as_float(z, centers, s):
    return float(kmeans_loss(z, centers, s))


def loss_detached(z, centers, s):
    return kmeans_loss(z.detach(), centers, s)


def loss_in_place(z, centers, s):
    z -= centers[s]  # overwrites the caller's embeddings
    return 0.5 * z.pow(2).sum(1).mean()


# ----------------------------------------------------------------------------- wrong centroid steps


def count_before_increment(centers, counts, z, s):
    centers, counts = centers.clone(), counts.clone()
    for z_i, k in zip(z, s.tolist(), strict=True):
        centers[k] = centers[k] - (centers[k] - z_i) / counts[k]
        counts[k] += 1
    return centers, counts


def constant_step(centers, counts, z, s, lr=0.5):
    centers, counts = centers.clone(), counts.clone()
    for z_i, k in zip(z, s.tolist(), strict=True):
        counts[k] += 1
        centers[k] = centers[k] - lr * (centers[k] - z_i)
    return centers, counts


def batch_mean_only(centers, counts, z, s):
    m = torch.bincount(s, minlength=len(centers)).to(counts.dtype)
    sums = torch.zeros_like(centers).index_add(0, s, z)
    new = torch.where(m[:, None] > 0, sums / m.clamp_min(1)[:, None], centers)
    return new, counts + m


def last_point_only(centers, counts, z, s):
    new_counts = counts + torch.bincount(s, minlength=len(centers)).to(counts.dtype)
    new_centers = centers.clone()
    new_centers[s] = centers[s] - (centers[s] - z) / new_counts[s, None]  # one write per repeated index
    return new_centers, new_counts


def counts_plus_one(centers, counts, z, s):
    new_counts = counts.clone()
    new_counts[s] += 1  # repeated indices are incremented once
    sums = (centers * counts[:, None]).index_add(0, s, z)
    return sums / new_counts[:, None], new_counts


def in_place(centers, counts, z, s):
    sums = centers.mul_(counts[:, None]).index_add_(0, s, z)
    counts.index_add_(0, s, torch.ones_like(s, dtype=counts.dtype))
    return sums.div_(counts[:, None]), counts


def bincount_without_minlength(centers, counts, z, s):
    new_counts = counts + torch.bincount(s).to(counts.dtype)  # shape error when the last cluster is empty
    return (centers * counts[:, None]).index_add(0, s, z) / new_counts[:, None], new_counts


KMEANS_WRONGS = [loss_without_half, loss_summed_over_batch, loss_mean_over_coordinates, loss_not_squared,
                 loss_nearest_centroid, loss_per_sample, loss_as_float, loss_detached, loss_in_place]
UPDATE_WRONGS = [count_before_increment, constant_step, batch_mean_only, last_point_only, counts_plus_one,
                 in_place, bincount_without_minlength]


@pytest.mark.parametrize("check, solution, wrongs", [
    (check_kmeans_loss, kmeans_loss, KMEANS_WRONGS),
    (check_update_centroids, update_centroids, UPDATE_WRONGS),
], ids=["kmeans_loss", "update_centroids"])
def test_check_fails_on_stub_and_wrong_answers_passes_on_reference(check, solution, wrongs, check_contract):
    check_contract(check, solution, wrongs)


def test_the_papers_per_point_loop_passes_too(capsys):
    """Correct but slow: the sequential update is the definition, so the check must accept it."""
    assert check_update_centroids(_sequential_update) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, phrase", [
    (loss_without_half, "½ is missing"),
    (loss_summed_over_batch, "average over the samples"),
    (loss_mean_over_coordinates, "sum over them"),
    (loss_not_squared, "squared"),
    (loss_nearest_centroid, "given assignments"),
    (loss_per_sample, "one number for the batch"),
    (loss_as_float, "torch tensor"),
    (loss_detached, "no gradient reaches z"),
    (loss_in_place, "in place"),
    (count_before_increment, "BEFORE the increment"),
    (constant_step, "constant step"),
    (batch_mean_only, "batch mean"),
    (last_point_only, "only one of its points"),
    (counts_plus_one, "adds 1 only once"),
    (in_place, "in place"),
    (bincount_without_minlength, "RuntimeError"),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_hints_name_the_problem(wrong, phrase, capsys):
    check = check_kmeans_loss if wrong in KMEANS_WRONGS else check_update_centroids
    assert check(wrong) is False
    assert phrase in capsys.readouterr().out
