"""The perplexity calibration of EmbeddingClustering's code affinities (lecture 11)."""

import math

import numpy as np
import pytest
import torch

from dclib.methods.embedding import EmbeddingClustering, calibrate_code_scale, row_perplexities


def brute_force_perplexities(z: torch.Tensor, alpha: float) -> list[float]:
    """exp of the entropy of p_{j|i} ∝ (1 + d_ij²/α)^(−(α+1)/2), one loop per pair."""
    out = []
    for i in range(len(z)):
        k = [(1.0 + float(((z[i] - z[j]) ** 2).sum()) / alpha) ** (-(alpha + 1) / 2) if j != i else 0.0
             for j in range(len(z))]
        total = sum(k)
        out.append(math.exp(-sum(v / total * math.log(v / total) for v in k if v > 0)))
    return out


def test_row_perplexities_match_a_brute_force_loop():
    z = torch.randn(25, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2.0
    np.testing.assert_allclose(row_perplexities(z, 6.0).numpy(), brute_force_perplexities(z, 6.0), rtol=1e-10)


def test_perplexity_is_n_minus_1_for_identical_points_and_small_for_far_apart_pairs():
    assert torch.allclose(row_perplexities(torch.zeros(10, 2, dtype=torch.float64), 4.0),
                          torch.full((10,), 9.0, dtype=torch.float64))
    pairs = torch.tensor([[0.0, 0.0], [0.01, 0.0], [100.0, 0.0], [100.01, 0.0]], dtype=torch.float64)
    assert row_perplexities(pairs, 1.0).max() < 1.01  # each point's only neighbour is its twin


@pytest.mark.parametrize("target", [5.0, 20.0, 40.0])
def test_calibrated_scale_hits_the_target_median_perplexity(target):
    z = torch.randn(60, 4, generator=torch.Generator().manual_seed(1)) * 0.3
    s = calibrate_code_scale(z, target)
    achieved = float(np.median(brute_force_perplexities((z.double() * s), 8.0)))
    assert achieved == pytest.approx(target, rel=1e-3)
    # a larger target needs a smaller scale (points closer together see more neighbours)
    assert calibrate_code_scale(z, target + 5.0) < s


def test_calibration_is_independent_of_the_codes_scale():
    z = torch.randn(50, 3, generator=torch.Generator().manual_seed(2))
    assert 10.0 * calibrate_code_scale(10.0 * z, 15.0) == pytest.approx(calibrate_code_scale(z, 15.0), rel=1e-6)


@pytest.mark.parametrize("bad", [1.0, 0.5, 49.0, 100.0])
def test_perplexity_out_of_range_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="perplexity must be between 1 and the batch size"):
        calibrate_code_scale(torch.randn(50, 3), bad)


def test_embedding_clustering_with_perplexity_uses_the_calibrated_scale():
    X = torch.cat([torch.randn(60, 8) * 0.05 + c for c in (0.0, 1.0, 2.0)]).clamp(0, 1)
    kw = dict(n_clusters=3, dims=(8, 16, 4), pretrain="end-to-end", pretrain_epochs=2, epochs=2, batch_size=60,
              hidden=(16,), embedding_dim=2, n_init=2, cache=False, device="cpu", random_state=0)
    plain = EmbeddingClustering(**kw).fit(X)
    a = EmbeddingClustering(perplexity=10.0, **kw).fit(X)
    b = EmbeddingClustering(perplexity=10.0, **kw).fit(X)
    assert plain.code_scale_ == 1.0 and a.code_scale_ != 1.0
    assert a.code_scale_ == b.code_scale_ and np.array_equal(a.labels_, b.labels_)  # reproducible
    with pytest.raises(ValueError, match="perplexity must be between"):
        EmbeddingClustering(perplexity=100.0, **kw).fit(X)


def test_embedding_method_pretrains_the_same_autoencoder_as_ae_kmeans():
    # The pair batch (batch_size) must not change the autoencoder: it pretrains at pretrain_batch_size,
    # so with the same pretraining settings it is the autoencoder AE + k-means / DEC / DEN start from.
    from dclib.methods import AEKMeans

    X = torch.cat([torch.randn(60, 8) * 0.05 + c for c in (0.0, 1.0, 2.0)]).clamp(0, 1)
    pre = dict(n_clusters=3, dims=(8, 16, 4), pretrain="end-to-end", pretrain_epochs=2, cache=False, device="cpu",
               random_state=0)
    reference = AEKMeans(batch_size=32, **pre).fit(X).autoencoder_.state_dict()
    emb = dict(epochs=1, batch_size=90, hidden=(16,), embedding_dim=2, n_init=1, **pre)
    same = EmbeddingClustering(pretrain_batch_size=32, **emb).fit(X).autoencoder_.state_dict()
    other = EmbeddingClustering(pretrain_batch_size=90, **emb).fit(X).autoencoder_.state_dict()
    assert all(torch.equal(reference[k], same[k]) for k in reference)
    assert not all(torch.equal(reference[k], other[k]) for k in reference)
    with pytest.raises(ValueError, match="pretrain_batch_size must be a positive integer"):
        EmbeddingClustering(pretrain_batch_size=0, **emb).fit(X)
