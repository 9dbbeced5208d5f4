"""DCN: the estimator on digits, the vectorised centroid step against the paper's per-point loop."""

import numpy as np
import pytest
import torch

from dclib import DCN, cluster_acc
from dclib.checks_dcn import _sequential_update  # the paper's per-point loop, the definition
from dclib.methods.dcn import PAPER_LAMDA, update_centroids

SMALL_AE = (64, 128, 64, 10)
EPOCHS = 5


def small(**kw):
    """A few-second configuration on the 8x8 digits."""
    base = dict(dims=SMALL_AE, pretrain_epochs=10, epochs=EPOCHS, batch_size=64, device="cpu", random_state=0)
    base.update(kw)
    return DCN(10, **base)


@pytest.fixture(scope="module")
def fitted(digits):
    # cache=False: a module-scoped fit runs outside the per-test cache directory of conftest.
    return small(cache=False).fit(digits.X, digits.y)


def test_update_centroids_equals_the_per_point_running_mean():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 2, generator=g, dtype=torch.float64)
    counts = torch.tensor([2.0, 1.0, 5.0], dtype=torch.float64)
    z = torch.randn(6, 2, generator=g, dtype=torch.float64)
    s = torch.tensor([0, 0, 2, 0, 2, 0])  # cluster 0 gets four points, cluster 1 none
    new_centers, new_counts = update_centroids(centers, counts, z, s)
    ref_centers, ref_counts = _sequential_update(centers, counts, z, s)
    torch.testing.assert_close(new_centers, ref_centers)
    torch.testing.assert_close(new_counts, ref_counts)
    torch.testing.assert_close(new_counts, torch.tensor([6.0, 1.0, 7.0], dtype=torch.float64))
    torch.testing.assert_close(new_centers[1], centers[1])  # no point: unchanged
    # the order of the points within a batch does not matter
    perm = torch.tensor([5, 2, 0, 4, 1, 3])
    torch.testing.assert_close(_sequential_update(centers, counts, z[perm], s[perm])[0], new_centers)
    # the inputs are not modified in place
    assert counts.tolist() == [2.0, 1.0, 5.0]


def test_update_centroids_keeps_each_centroid_the_mean_of_all_its_points():
    # Counts initialised from the k-means cluster sizes: after any number of batches each
    # centroid is exactly the mean of the initial points plus every point assigned since.
    g = torch.Generator().manual_seed(1)
    initial = torch.randn(7, 2, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0, 2, 1, 1])
    centers = torch.stack([initial[labels == k].mean(0) for k in range(3)])
    counts = torch.bincount(labels, minlength=3).double()
    seen, seen_labels = [initial], [labels]
    for _ in range(3):
        z = torch.randn(4, 2, generator=g, dtype=torch.float64)
        s = torch.randint(0, 3, (4,), generator=g)
        centers, counts = update_centroids(centers, counts, z, s)
        seen.append(z)
        seen_labels.append(s)
    points, assigned = torch.cat(seen), torch.cat(seen_labels)
    for k in range(3):
        torch.testing.assert_close(centers[k], points[assigned == k].mean(0))
        assert counts[k] == (assigned == k).sum()


def test_fit_predict_history_and_fitted_attributes(fitted, digits):
    model, n = fitted, len(digits)
    assert model.labels_.shape == (n,) and model.labels_.dtype == np.int64
    assert set(np.unique(model.labels_)) <= set(range(10))
    assert cluster_acc(digits.y, model.labels_) > 0.5  # chance is ~0.1
    np.testing.assert_array_equal(model.predict(digits.X), model.labels_)
    # labels_ is the nearest centroid in the embedding
    Z = model.transform(digits.X)
    assert Z.shape == (n, 10) and model.cluster_centers_.shape == (10, 10)
    d2 = ((Z[:, None, :] - model.cluster_centers_[None]) ** 2).sum(-1)
    assert (d2.argmin(1) == model.labels_).mean() > 0.999  # float32 ties aside
    h = model.history_
    assert {"epoch", "loss", "reconstruction", "kmeans", "acc", "nmi", "ari"} <= set(h)
    assert all(len(h[key]) == EPOCHS for key in ("loss", "reconstruction", "kmeans", "acc"))
    np.testing.assert_allclose(np.array(h["loss"]),
                               np.array(h["reconstruction"]) + model.lamda_ * np.array(h["kmeans"]), rtol=1e-5)
    assert h["kmeans"][-1] < h["kmeans"][0]  # the embedding becomes k-means friendly
    # counts start at the k-means cluster sizes (summing to n) and grow by n per epoch
    assert float(model.counts_.sum()) == n * (1 + EPOCHS)
    assert not model.centroids_.requires_grad  # M is updated by the running mean, not by gradients
    assert model.initial_labels_.shape == model.assignments_.shape == (n,)


def test_same_seed_same_labels(digits):
    a = small(epochs=2).fit(digits.X)
    b = small(epochs=2).fit(digits.X)  # the second fit reads the cached autoencoder
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.initial_labels_, b.initial_labels_)


def test_zero_epochs_keeps_the_kmeans_initialisation(digits):
    model = small(epochs=0, pretrain_epochs=2).fit(digits.X)
    assert (model.labels_ == model.initial_labels_).mean() > 0.99
    assert "loss" not in model.history_


@pytest.mark.parametrize(
    "X, k, kw, message",
    [
        (np.full((10, 3), np.nan), 2, {}, "NaN"),
        (np.zeros((5, 3)), 6, {}, "larger than the number of samples"),
        (np.zeros((10, 3)), 1, {}, "n_clusters"),
        (np.random.default_rng(0).normal(size=(10, 3)), 2, {"lamda": -1.0}, "lamda"),
        (np.random.default_rng(0).normal(size=(10, 3)), 2, {"lamda": float("nan")}, "lamda"),
        (np.random.default_rng(0).normal(size=(10, 3)), 2, {"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_input_raises_clear_errors(X, k, kw, message):
    with pytest.raises(ValueError, match=message):
        DCN(k, dims=(3, 2), pretrain_epochs=1, epochs=1, device="cpu", **kw).fit(X)


def test_save_and_load_round_trip(fitted, digits, tmp_path):
    fitted.save(tmp_path / "dcn.pt")
    loaded = DCN.load(tmp_path / "dcn.pt")
    assert loaded.get_params() == fitted.get_params() and loaded.lamda is None
    assert loaded.lamda_ == fitted.lamda_ == PAPER_LAMDA / 64
    np.testing.assert_array_equal(loaded.labels_, fitted.labels_)
    np.testing.assert_array_equal(loaded.predict(digits.X), fitted.labels_)
    np.testing.assert_allclose(loaded.cluster_centers_, fitted.cluster_centers_)
    np.testing.assert_allclose(loaded.transform(digits.X), fitted.transform(digits.X), atol=1e-6)


def test_default_lamda_is_the_papers_weight_in_the_librarys_units(digits):
    # The paper weighs ½‖z − μ‖² by 0.05 against a reconstruction error summed over the D inputs; the
    # library's is the mean, so the default is 0.05 / D. An explicit lamda is used as given.
    assert DCN().lamda is None
    default = small(epochs=1, pretrain_epochs=1, cache=False).fit(digits.X)
    assert default.lamda_ == pytest.approx(0.05 / 64)
    explicit = small(epochs=1, pretrain_epochs=1, cache=False, lamda=0.5).fit(digits.X)
    assert explicit.lamda_ == 0.5
    for model in (default, explicit):
        h = model.history_
        np.testing.assert_allclose(h["loss"], np.add(h["reconstruction"], np.multiply(model.lamda_, h["kmeans"])),
                                   rtol=1e-5)
    # on 28x28 images D = 784, whatever the input's shape
    images = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model = DCN(2, dims=(784, 16, 4), pretrain_epochs=1, epochs=1, batch_size=20, cache=False, device="cpu",
                random_state=0).fit(images)
    assert model.lamda_ == pytest.approx(0.05 / 784)


def test_library_loss_is_the_papers_loss_divided_by_d_when_lamda_is_converted():
    # The paper: mean over samples of ‖x̂ − x‖² (summed over D pixels) + λ/2 ‖z − μ_s‖². The library:
    # reconstruction_loss (a mean over pixels too) + (λ / D) kmeans_loss. Same loss up to the factor D, so the
    # same gradients up to D: the reason DCN's default lamda_ is PAPER_LAMDA / D.
    from dclib.losses import kmeans_loss, reconstruction_loss
    from dclib.models import MLPAutoencoder

    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        ae = MLPAutoencoder((30, 8, 3)).double()
    x = torch.rand(12, 30, generator=g, dtype=torch.float64)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64)
    s = torch.randint(0, 4, (12,), generator=g)
    lam, D = 0.7, x.shape[1]

    def grads(loss):
        return torch.cat([t.flatten() for t in torch.autograd.grad(loss, list(ae.parameters()))])

    z = ae.encode(x)
    paper = (((ae.decode(z) - x) ** 2).sum(1) + lam / 2 * ((z - mu[s]) ** 2).sum(1)).mean()
    z = ae.encode(x)
    library = reconstruction_loss(ae.decode(z), x) + (lam / D) * kmeans_loss(z, mu, s)
    torch.testing.assert_close(paper, D * library)
    torch.testing.assert_close(grads(paper), D * grads(library))
