"""DeepClusterer: the λ schedules and training phases by hand, alternation, λ = 0, each loss, errors."""

import warnings

import numpy as np
import pytest
import torch

from dclib import DeepClusterer, cluster_acc, taxonomy_method
from dclib.methods.baselines import fit_kmeans
from dclib.methods.deep_clusterer import CLUSTER_LOSSES, lambda_schedule, training_phases
from dclib.models import ConvAutoencoder, build_autoencoder
from dclib.train import embed, pretrain_autoencoder, pretrain_end_to_end
from dclib.utils import make_generator, seed_everything

SMALL_AE = (64, 128, 64, 10)


def small(**kw) -> DeepClusterer:
    """A configuration that fits the 8x8 digits in about a second."""
    base = dict(dims=SMALL_AE, pretrain_epochs=8, epochs=2, batch_size=128, lr=1e-3, n_init=3,
                device="cpu", random_state=0)
    base.update(kw)
    return DeepClusterer(10, **base)


def fit_quiet(model, X, y=None):
    with warnings.catch_warnings():  # a 2-epoch fit may leave a small cluster; not what these tests check
        warnings.simplefilter("ignore")
        return model.fit(X, y)


@pytest.fixture(scope="module")
def digits_small(digits):
    return digits.subset(600)


# ----------------------------------------------------------------------------- schedules, by hand


def test_lambda_schedules_by_hand():
    np.testing.assert_allclose(lambda_schedule("constant", 4, 0.5), [0.5, 0.5, 0.5, 0.5])
    # ramp over s = 3 epochs: λ·(t+1)/3, then λ
    np.testing.assert_allclose(lambda_schedule("linear", 6, 0.3, schedule_epochs=3), [0.1, 0.2, 0.3, 0.3, 0.3, 0.3])
    np.testing.assert_allclose(lambda_schedule("pretrain_then_joint", 5, 0.2, schedule_epochs=2), [0, 0, 0.2, 0.2, 0.2])
    # λ·3^⌊t/2⌋
    np.testing.assert_allclose(
        lambda_schedule("step", 6, 0.1, schedule_epochs=2, step_factor=3.0), [0.1, 0.1, 0.3, 0.3, 0.9, 0.9]
    )
    np.testing.assert_allclose(lambda_schedule("step", 3, 1.0, schedule_epochs=1, step_factor=0.5), [1, 0.5, 0.25])
    assert lambda_schedule("linear", 0, 1.0).shape == (0,)


def test_training_phases_by_hand():
    assert training_phases([0.0, 0.1, 0.1], "joint") == ["reconstruction", "joint", "joint"]
    assert training_phases([0.0, 0.0, 0.1, 0.1, 0.1, 0.2], "alternating") == [
        "reconstruction", "reconstruction", "cluster", "reconstruction", "cluster", "reconstruction"]
    assert training_phases([0.1, 0.0, 0.1], "alternating") == ["cluster", "reconstruction", "cluster"]


def test_fit_logs_the_schedule(digits_small):
    model = fit_quiet(small(schedule="linear", lamda=0.3, schedule_epochs=3, epochs=3), digits_small.X, digits_small.y)
    np.testing.assert_allclose(model.history_["lamda"], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(model.lamdas_, [0.1, 0.2, 0.3])
    h = model.history_
    assert {"loss", "reconstruction", "hardening", "cluster", "acc", "nmi", "ari"} <= set(h)
    assert all(len(v) == 3 for v in h.values())
    # joint: the logged loss is L_rec + λ(t)·L_clust, epoch by epoch
    np.testing.assert_allclose(h["loss"], np.add(h["reconstruction"], np.multiply(h["lamda"], h["cluster"])),
                               rtol=1e-4)


# ----------------------------------------------------------------------------- alternating


def test_alternating_really_alternates(digits_small):
    X = digits_small.X
    fits = [fit_quiet(small(mode="alternating", lamda=0.5, epochs=e), X) for e in (0, 1, 2)]
    h = fits[2].history_
    assert h["trains_cluster"] == [1.0, 0.0] and h["trains_reconstruction"] == [0.0, 1.0]
    # epoch 0 optimised λ·L_clust only, epoch 1 L_rec only
    np.testing.assert_allclose(h["loss"][0], 0.5 * h["cluster"][0], rtol=1e-5)
    np.testing.assert_allclose(h["loss"][1], h["reconstruction"][1], rtol=1e-5)

    def params(model, part):
        return torch.cat([p.detach().flatten() for n, p in model.autoencoder_.named_parameters() if n.startswith(part)])

    pretrained, after_cluster, after_rec = fits
    # the cluster epoch moved the encoder and the centroids but froze the decoder ...
    assert torch.equal(params(after_cluster, "decoder"), params(pretrained, "decoder"))
    assert not torch.equal(params(after_cluster, "encoder"), params(pretrained, "encoder"))
    assert not np.array_equal(after_cluster.cluster_centers_, pretrained.cluster_centers_)
    # ... the reconstruction epoch moved the decoder and froze the centroids
    assert not torch.equal(params(after_rec, "decoder"), params(after_cluster, "decoder"))
    np.testing.assert_array_equal(after_rec.cluster_centers_, after_cluster.cluster_centers_)


# ----------------------------------------------------------------------------- λ = 0


@pytest.mark.parametrize("mode", ["joint", "alternating"])
def test_lambda_zero_is_pretraining_then_kmeans(digits_small, mode):
    """With λ(t) = 0 the clustering loss is inert: the fit is more reconstruction training + k-means."""
    X = digits_small.X
    model = fit_quiet(small(lamda=0.0, epochs=2, mode=mode, final_kmeans=True, cluster_loss="kmeans"), X)
    assert model.history_["trains_cluster"] == [0.0, 0.0]

    # the same pipeline by hand, from the library's pieces
    seed_everything(0)
    ae = build_autoencoder("mlp", tuple(X.shape[1:]), dims=SMALL_AE)
    pretrain_autoencoder(ae, X, epochs=8, batch_size=128, lr=1e-3, seed=0, generator=make_generator(0, X.device),
                         show_progress=False)
    pretrain_end_to_end(ae, X, epochs=2, batch_size=128, lr=1e-3, generator=make_generator(2, X.device),
                        show_progress=False)
    Z = embed(ae.encode, X)
    np.testing.assert_allclose(model.transform(X), Z.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.labels_, fit_kmeans(Z, 10, 3, 0).labels_)


# ----------------------------------------------------------------------------- each clustering loss


@pytest.mark.parametrize("name", list(CLUSTER_LOSSES))
def test_each_cluster_loss_runs_and_lowers_its_own_term(name, digits):
    """One epoch holds the targets fixed: training must lower the term it weights, on all the data."""
    X, y = digits.X, digits.y
    dims = (64, 128, 64, 20) if name == "group_sparsity" else SMALL_AE
    lamda = {"group_sparsity": 0.02, "kmeans": 0.1}.get(name, 1.0)
    fit = fit_quiet(small(cluster_loss=name, lamda=lamda, epochs=1, dims=dims, batch_size=64, pretrain_epochs=10,
                          final_kmeans=True), X, y)
    h = fit.history_
    assert h[f"{name}_end"][0] < 0.95 * h[f"{name}_start"][0]
    # with λ = 0 the same epoch leaves the term where it was (more reconstruction training only)
    inert = fit_quiet(small(cluster_loss=name, lamda=0.0, epochs=1, dims=dims, batch_size=64, pretrain_epochs=10), X)
    assert inert.history_[f"{name}_start"] == h[f"{name}_start"]  # the same starting point ...
    assert h[f"{name}_end"][0] < inert.history_[f"{name}_end"][0]  # ... and only the weighted fit lowers it
    assert fit.labels_.shape == (len(X),) and set(np.unique(fit.labels_)) <= set(range(10))
    np.testing.assert_array_equal(fit.predict(X), fit.labels_)
    assert cluster_acc(y, fit.labels_) > 0.5  # the embedding still clusters (chance is ~0.1)


def test_combined_losses_log_each_term(digits_small):
    model = fit_quiet(small(cluster_loss="hardening+balanced", epochs=1), digits_small.X)
    h = model.history_
    np.testing.assert_allclose(h["cluster"], np.add(h["hardening"], h["balanced"]), rtol=1e-5)


# ----------------------------------------------------------------------------- final k-means, API


def test_final_kmeans_sets_labels_once_in_fit(digits_small):
    X = digits_small.X
    with_km = fit_quiet(small(final_kmeans=True, epochs=1), X)
    Z = with_km.transform(X)
    np.testing.assert_array_equal(with_km.labels_, fit_kmeans(Z, 10, 3, 0).labels_)
    np.testing.assert_array_equal(with_km.predict(X), with_km.labels_)
    own = ((Z[:, None] - with_km.cluster_centers_[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(with_km.assignment_labels_, own)  # the loss's rule, kept beside labels_
    without = fit_quiet(small(final_kmeans=False, epochs=1), X)
    np.testing.assert_array_equal(without.labels_, with_km.assignment_labels_)


def test_same_seed_same_result_and_save_load(digits_small, tmp_path):
    X = digits_small.X
    a = fit_quiet(small(cluster_loss="classification", epochs=2), X)
    b = fit_quiet(small(cluster_loss="classification", epochs=2), X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.history_ == b.history_
    a.save(tmp_path / "model.pt")
    loaded = DeepClusterer.load(tmp_path / "model.pt")
    np.testing.assert_array_equal(loaded.predict(X), a.labels_)
    assert loaded.get_params() == a.get_params()


BAD = [
    (dict(cluster_loss="kmean"), "one of 'hardening'"),
    (dict(cluster_loss="hardening+dec"), "joined by '\\+'"),
    (dict(cluster_loss=None), "cluster_loss must be"),
    (dict(schedule="cosine"), "schedule must be one of"),
    (dict(mode="both"), "mode must be one of 'joint', 'alternating'"),
    (dict(lamda=-1.0), "lamda .* >= 0"),
    (dict(lamda=float("nan")), "finite"),
    (dict(schedule="linear", schedule_epochs=0), "schedule_epochs must be an integer >= 1"),
    (dict(schedule="step", step_factor=0.0), "step_factor must be a positive"),
    (dict(epochs=-1), "epochs must be an integer >= 0"),
    (dict(final_kmeans="yes"), "final_kmeans must be True or False"),
    (dict(lr=0.0), "lr must be a positive"),
    (dict(cluster_loss="group_sparsity", dims=(64, 32, 5)), "dims ending in >= 10"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_bad_values_raise_before_training(kwargs, message, digits_small):
    with pytest.raises(ValueError, match=message):
        small(**kwargs).fit(digits_small.X)


def test_taxonomy_method_configuration_runs_on_images(digits_small):
    model = taxonomy_method(10)
    p = model.get_params()
    assert (p["autoencoder"], p["cluster_loss"], p["mode"], p["final_kmeans"]) == ("conv", "hardening", "joint", True)
    assert p["pretrain"] == "end-to-end" and p["lamda"] > 0
    tiny = taxonomy_method(10, autoencoder=ConvAutoencoder((1, 8, 8), channels=(8, 16, 16)), pretrain_epochs=2,
                           epochs=1, n_init=3, device="cpu", random_state=0)
    fit_quiet(tiny, digits_small.X)
    np.testing.assert_array_equal(tiny.labels_, fit_kmeans(tiny.transform(digits_small.X), 10, 3, 0).labels_)
    with pytest.raises(ValueError, match="(?i)images"):
        taxonomy_method(10, device="cpu").fit(digits_small.X_flat)
