"""The scikit-learn API every method shares: fit/predict/labels_, determinism, errors, save/load."""

import numpy as np
import pytest
import torch

from dclib import AEKMeans, DegenerateClusteringWarning, KMeansBaseline, cluster_acc
from dclib.methods.dcn import DCN
from dclib.methods.dec import DEC, IDEC
from dclib.methods.iic import IIC
from dclib.methods.vade import VaDE

SMALL_AE = (64, 128, 64, 10)


def small(cls, **kw):
    """A few-second configuration on the 8x8 digits."""
    base = dict(dims=SMALL_AE, pretrain_epochs=10, batch_size=64, device="cpu", random_state=0)
    if cls in (DEC, IDEC):
        base.update(update_interval=10, max_iter=60)
    base.update(kw)
    return cls(10, **base)


ESTIMATORS = [
    lambda: KMeansBaseline(10, random_state=0),
    lambda: KMeansBaseline(10, features="pca", n_components=20, random_state=0),
    lambda: small(AEKMeans),
    lambda: small(DEC),
    lambda: small(DEC, pretrain="end-to-end"),
    lambda: small(IDEC, pretrain="end-to-end"),
    lambda: small(VaDE, epochs=5),
    lambda: small(DCN, epochs=5),
]


@pytest.mark.parametrize("make", ESTIMATORS)
def test_fit_predict_and_beats_chance(make, digits):
    model = make()
    labels = model.fit_predict(digits.X, digits.y)
    assert labels.shape == (len(digits),) and labels.dtype == np.int64
    assert set(np.unique(labels)) <= set(range(10))
    assert cluster_acc(digits.y, labels) > 0.5  # chance is ~0.1
    # predict on the training data reproduces the method's own labels_
    np.testing.assert_array_equal(model.predict(digits.X), model.labels_)


@pytest.mark.parametrize("make", ESTIMATORS)
def test_same_seed_same_labels(make, digits):
    np.testing.assert_array_equal(make().fit(digits.X).labels_, make().fit(digits.X).labels_)


def test_ae_kmeans_transform_and_cached_pretraining_give_same_result(digits):
    a = small(AEKMeans).fit(digits.X)
    b = small(AEKMeans).fit(digits.X)  # second fit reads the cached autoencoder
    c = small(AEKMeans, cache=False).fit(digits.X)
    assert a.transform(digits.X).shape == (len(digits), 10)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.labels_, c.labels_)


@pytest.mark.parametrize(
    "X, k, message",
    [
        (np.zeros(10), 2, "shape"),
        (np.full((10, 3), np.nan), 2, "NaN"),
        (np.zeros((10, 3)), 1, "n_clusters"),
        (np.zeros((5, 3)), 6, "larger than the number of samples"),
        (np.array([["a", "b"]] * 4), 2, "numbers"),
    ],
)
def test_bad_input_raises_clear_errors(X, k, message):
    with pytest.raises(ValueError, match=message):
        KMeansBaseline(k).fit(X)
    with pytest.raises(ValueError, match=message):
        DEC(k, dims=(3, 2), pretrain_epochs=1, device="cpu").fit(X)


def test_labels_of_wrong_length_and_predict_before_fit(digits):
    with pytest.raises(ValueError, match="one label per sample"):
        KMeansBaseline(10).fit(digits.X, digits.y[:10])
    with pytest.raises(RuntimeError, match="not fitted"):
        KMeansBaseline(10).predict(digits.X)
    model = KMeansBaseline(10, random_state=0).fit(digits.X)
    with pytest.raises(ValueError, match="features per sample"):
        model.predict(np.zeros((3, 5)))


def test_degenerate_solution_warns():
    X = np.vstack([np.zeros((50, 2)), np.ones((50, 2)), [[0.5, 0.5]]])
    X = X + np.random.default_rng(0).normal(0, 1e-3, X.shape)
    with pytest.warns(DegenerateClusteringWarning, match="nearly empty"):
        KMeansBaseline(3, random_state=0).fit(X)


def test_save_and_load_round_trip(digits, tmp_path):
    model = small(DEC).fit(digits.X)
    model.save(tmp_path / "dec.pt")
    loaded = DEC.load(tmp_path / "dec.pt")
    np.testing.assert_array_equal(loaded.labels_, model.labels_)
    np.testing.assert_allclose(loaded.predict_proba(digits.X), model.predict_proba(digits.X), atol=1e-6)
    assert loaded.get_params() == model.get_params()
    with pytest.raises(ValueError, match="holds a DEC"):
        IDEC.load(tmp_path / "dec.pt")


def test_dec_history_and_convergence(digits):
    model = small(DEC, tol=0.5, max_iter=500).fit(digits.X, digits.y)
    h = model.history_
    assert {"iteration", "loss", "label_change", "acc", "nmi", "ari"} <= set(h)
    assert h["iteration"][:2] == [0, 10]
    # stops at the first target update where fewer than tol of the points changed cluster
    assert model.converged_ and h["label_change"][-1] < 0.5 and model.n_iter_ < 500
    q = model.predict_proba(digits.X)
    np.testing.assert_allclose(q.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(q.argmax(1), model.labels_)
    assert model.cluster_centers_.shape == (10, 10)


def test_dec_training_improves_on_its_kmeans_initialisation(digits):
    # With P held fixed for the whole run (one target update), SGD must lower KL(P||Q) epoch by epoch.
    model = small(DEC, max_iter=300, update_interval=300, tol=0.0).fit(digits.X, digits.y)
    losses = model.epoch_history_["loss"]
    assert len(losses) > 5 and losses[-1] < 0.8 * losses[0]
    model = small(DEC, max_iter=300, tol=0.0).fit(digits.X, digits.y)
    assert model.history_["acc"][-1] >= model.history_["acc"][0] - 0.02


def test_dec_keeps_decoder_fixed_idec_trains_it(digits):
    dec = small(DEC, pretrain="end-to-end").fit(digits.X)
    idec = small(IDEC, pretrain="end-to-end").fit(digits.X)
    ref = small(AEKMeans, pretrain="end-to-end").fit(digits.X).autoencoder_
    dec_w = dict(dec.autoencoder_.named_parameters())
    idec_w = dict(idec.autoencoder_.named_parameters())
    for name, w in ref.named_parameters():
        if name.startswith("decoder"):
            assert torch.equal(dec_w[name], w)
            assert not torch.equal(idec_w[name], w)
        else:
            assert not torch.equal(dec_w[name], w)
    assert "reconstruction" in idec.epoch_history_ and idec.get_params()["gamma"] == 0.1


def test_dec_with_conv_autoencoder_on_images(digits):
    from dclib.models import ConvAutoencoder

    model = DEC(10, autoencoder=ConvAutoencoder((1, 8, 8), channels=(8, 16, 16)), pretrain="end-to-end",
                pretrain_epochs=3, update_interval=10, max_iter=20, device="cpu", random_state=0)
    model.fit(digits.X)
    assert model.transform(digits.X).shape == (len(digits), 10)
    with pytest.raises(ValueError, match="(?i)greedy"):
        DEC(10, autoencoder="conv", pretrain="greedy", device="cpu").fit(digits.X)


def test_vade_api_sampling_and_history(digits, tmp_path):
    model = small(VaDE, epochs=4).fit(digits.X, digits.y)
    gamma = model.predict_proba(digits.X)
    np.testing.assert_allclose(gamma.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(gamma.argmax(1), model.labels_)
    assert model.transform(digits.X).shape == (len(digits), 10)
    assert {"loss", "elbo", "reconstruction", "log_p_z_given_c", "log_p_c", "entropy_z", "entropy_c", "acc"} <= set(
        model.history_)
    assert len(model.history_["acc"]) == len(model.history_["elbo"]) == 4
    pi = model.weights_.detach()
    assert torch.all(pi > 0) and float(pi.sum()) == pytest.approx(1.0, abs=1e-6)
    images, clusters = model.sample(12, return_clusters=True)
    assert images.shape == (12, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    assert set(clusters) <= set(range(10))
    # sampling from one cluster: the generated images are assigned mostly to that cluster
    c = int(np.bincount(model.labels_).argmax())
    assert (model.predict(model.sample(50, cluster=c)) == c).mean() > 0.5
    model.save(tmp_path / "vade.pt")
    np.testing.assert_allclose(VaDE.load(tmp_path / "vade.pt").predict_proba(digits.X), gamma, atol=1e-5)
    with pytest.raises(ValueError, match="cluster must be"):
        model.sample(3, cluster=10)


def _blobs_where_one_em_start_merges_two():
    """8 unequal 2-D blobs on which scikit-learn's one-start GMM (random_state 0) merges two of them."""
    rng = np.random.default_rng(0)
    centers, sizes = rng.normal(size=(8, 2)) * 6, rng.integers(30, 200, 8)
    Z = np.concatenate([c + 0.5 * rng.normal(size=(s, 2)) for c, s in zip(centers, sizes, strict=True)])
    return Z, np.repeat(np.arange(8), sizes)


def test_vade_mixture_start_keeps_the_more_likely_mixture():
    Z, y = _blobs_where_one_em_start_merges_two()
    fits = {start: VaDE(8, n_init=1, mixture_start=start, random_state=0)._initial_mixture(Z)
            for start in ("gmm", "kmeans", "best")}
    assert set(fits["gmm"][1]) == {"gmm"} and set(fits["kmeans"][1]) == {"kmeans"}
    gmm, scores = fits["best"]
    assert scores == {"gmm": fits["gmm"][1]["gmm"], "kmeans": fits["kmeans"][1]["kmeans"]}
    # the one-start EM is stuck (two blobs merged); the k-means-started one is not, and has the higher likelihood
    assert cluster_acc(y, fits["gmm"][0].predict(Z)) < 0.95 < cluster_acc(y, fits["kmeans"][0].predict(Z))
    assert scores["kmeans"] > scores["gmm"]
    assert gmm.score(Z) == pytest.approx(scores["kmeans"])
    np.testing.assert_array_equal(gmm.predict(Z), fits["kmeans"][0].predict(Z))


def test_vade_full_start_is_the_diagonal_moments_of_a_full_covariance_mixture():
    from scipy.stats import multivariate_normal
    from sklearn.mixture import GaussianMixture

    from dclib.methods.vade import _diagonal_moments

    Z, _ = _blobs_where_one_em_start_merges_two()
    Z = Z @ np.array([[1.0, 0.6], [0.0, 0.8]])  # correlated dimensions inside every cluster
    model = VaDE(8, n_init=2, mixture_start="full", random_state=0)
    model.device_ = torch.device("cpu")  # as fit() sets it before it picks the start (the EM's device follows it)
    gmm, scores = model._initial_mixture(Z)
    assert set(scores) == {"full"}
    full = GaussianMixture(8, covariance_type="full", init_params="k-means++", n_init=2, random_state=0).fit(Z)
    R = full.predict_proba(Z)
    for k in range(8):  # the moments, by brute force: weighted mean and variance of each cluster
        w = R[:, k] / R[:, k].sum()
        mean = w @ Z
        np.testing.assert_allclose(gmm.weights_[k], R[:, k].mean(), rtol=1e-12)
        np.testing.assert_allclose(gmm.means_[k], mean, rtol=1e-9)
        np.testing.assert_allclose(gmm.covariances_[k], w @ (Z - mean) ** 2 + 1e-4, rtol=1e-9)
    # no EM ran after it, and it scores and predicts as the diagonal mixture with exactly those parameters
    densities = np.stack([gmm.weights_[k] * multivariate_normal(gmm.means_[k], np.diag(gmm.covariances_[k])).pdf(Z)
                          for k in range(8)], axis=1)
    assert gmm.score(Z) == pytest.approx(np.log(densities.sum(1)).mean(), rel=1e-9) == scores["full"]
    np.testing.assert_array_equal(gmm.predict(Z), densities.argmax(1))
    weights, _, _ = _diagonal_moments(np.eye(8)[[0] * len(Z)], Z, 1e-4)  # seven empty clusters stay finite
    assert weights[0] == 1 and np.isfinite(_diagonal_moments(np.eye(8)[[0] * len(Z)], Z, 1e-4)[1]).all()


def test_vade_full_start_restarts_on_a_sample_and_refines_the_best_on_all(monkeypatch):
    # On more than START_SAMPLE_SIZE points, the k-means++-seeded restarts see a random sample, and EM then refines
    # the most likely of them on every point: from its parameters, so the likelihood on all points can only rise.
    from sklearn.mixture import GaussianMixture

    from dclib.methods import vade as vade_module

    Z, y = _blobs_where_one_em_start_merges_two()
    monkeypatch.setattr(vade_module, "START_SAMPLE_SIZE", 300)
    fits = []
    fit = GaussianMixture.fit
    monkeypatch.setattr(GaussianMixture, "fit", lambda self, X, y=None: fits.append((self, X)) or fit(self, X))
    full = vade_module._full_mixture(Z, 8, 3, 0)
    *restarts, (refined, everything) = fits
    assert len(restarts) == 3 and everything is Z and refined is full
    sample = restarts[0][1]
    assert sample.shape == (300, 2) and all(X is sample for _, X in restarts)
    assert all(r.init_params == "k-means++" and r.covariance_type == "full" for r, _ in restarts)
    assert {tuple(row) for row in sample} <= {tuple(row) for row in Z}  # a sample of the rows, not a transform
    best = max((r for r, _ in restarts), key=lambda r: r.lower_bound_)
    np.testing.assert_array_equal(refined.means_init, best.means_)
    assert full.score(Z) >= best.score(Z) - 1e-9
    assert cluster_acc(y, full.predict(Z)) > 0.95  # eight blobs, found from 300 of their points
    again = vade_module._full_mixture(Z, 8, 3, 0)  # random_state fixes the sample and the restarts
    np.testing.assert_array_equal(again.means_, full.means_)


def test_vade_full_start_restarts_in_parallel_are_those_of_n_init():
    # The restarts run side by side (n_jobs) from replayed k-means++ seedings: the kept one must be exactly the one
    # GaussianMixture(n_init=k) keeps, whatever n_jobs, and another random_state must give other restarts.
    from sklearn.mixture import GaussianMixture

    from dclib.methods.vade import _full_mixture
    from dclib.mixture import restart_states

    Z, _ = _blobs_where_one_em_start_merges_two()
    reference = GaussianMixture(8, covariance_type="full", init_params="k-means++", n_init=6, random_state=3).fit(Z)
    for n_jobs in (None, 2):
        kept = _full_mixture(Z, 8, 6, 3, n_jobs=n_jobs)
        np.testing.assert_array_equal(kept.means_, reference.means_)
        np.testing.assert_array_equal(kept.precisions_cholesky_, reference.precisions_cholesky_)
        assert kept.lower_bound_ == reference.lower_bound_ and kept.n_iter_ == reference.n_iter_
    assert len({s.randint(2**31) for s in restart_states(Z, 8, 6, 3)}) == 6  # each restart starts from its own state
    other = GaussianMixture(8, covariance_type="full", init_params="k-means++", n_init=6, random_state=4).fit(Z)
    assert not np.array_equal(other.means_, reference.means_)  # the check above can tell seeds apart


def test_vade_times_its_cpu_mixtures_apart_from_the_rest_of_the_fit(digits, monkeypatch):
    # mixture_seconds_ is the start's EM plus the final refit (scikit-learn, on the CPU): a part of the fit,
    # disjoint from the pretraining, and the refit's time is in it (a refit made 0.3 s slower must show).
    import time

    refit = VaDE._refit_full_mixture
    monkeypatch.setattr(VaDE, "_refit_full_mixture", lambda self, X: time.sleep(0.3) or refit(self, X))
    clock = time.perf_counter()
    model = small(VaDE, epochs=1, mixture_start="full", n_init=3, final_mixture="full").fit(digits.X)
    total = time.perf_counter() - clock
    assert model.mixture_seconds_ >= 0.3 and model.pretrain_seconds_ + model.mixture_seconds_ < total
    plain = small(VaDE, epochs=1, mixture_start="full", n_init=3).fit(digits.X)  # no refit: only the start
    assert 0 < plain.mixture_seconds_ < model.mixture_seconds_  # by the refit and its 0.3 s


def test_vade_fit_records_its_mixture_start(digits):
    assert set(small(VaDE, epochs=0).fit(digits.X).mixture_log_likelihoods_) == {"gmm"}  # the default
    model = small(VaDE, epochs=1, mixture_start="best").fit(digits.X)
    assert set(model.mixture_log_likelihoods_) == {"gmm", "kmeans"}
    assert model.mixture_start_ == max(model.mixture_log_likelihoods_, key=model.mixture_log_likelihoods_.get)
    full = small(VaDE, epochs=1, mixture_start="full").fit(digits.X)
    assert full.mixture_start_ == "full" and np.isfinite(full.history_["loss"]).all()
    with pytest.raises(ValueError, match="mixture_start must be"):
        small(VaDE, mixture_start="kmeans++").fit(digits.X)


def test_vade_final_mixture_full_is_a_full_covariance_refit_started_at_vades_means(digits, tmp_path):
    from sklearn.mixture import GaussianMixture

    own = small(VaDE, epochs=2).fit(digits.X)
    full = small(VaDE, epochs=2, final_mixture="full").fit(digits.X)
    assert own.final_mixture_ is None
    np.testing.assert_array_equal(full.own_labels_, own.labels_)  # same training: only the last step differs
    np.testing.assert_array_equal(own.own_labels_, own.labels_)
    Z = full.transform(digits.X).astype(np.float64)
    by_hand = GaussianMixture(10, covariance_type="full", random_state=0,
                              means_init=full.cluster_centers_.astype(np.float64)).fit(Z)
    assert full.final_mixture_.covariances_.shape == (10, 10, 10)
    np.testing.assert_array_equal(full.labels_, by_hand.predict(Z))
    assert not np.array_equal(full.labels_, full.own_labels_)  # the refit moved some digits
    proba = full.predict_proba(digits.X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(proba.argmax(1), full.labels_)
    np.testing.assert_array_equal(full.predict(digits.X), full.labels_)
    full.save(tmp_path / "vade_full.pt")
    np.testing.assert_array_equal(VaDE.load(tmp_path / "vade_full.pt").predict(digits.X), full.labels_)
    with pytest.raises(ValueError, match="final_mixture must be"):
        small(VaDE, epochs=1, final_mixture="diag").fit(digits.X)


def test_vade_mixture_backend_torch_fits_the_same_mixtures_as_scikit_learn(digits, monkeypatch):
    # The full start and the full refit by dclib.mixture (here on the CPU) must give the fit scikit-learn gives.
    from dclib import mixture

    runs = []
    full_em = mixture.full_em
    monkeypatch.setattr(mixture, "full_em", lambda X, weights, *a, **k: runs.append(len(weights)) or full_em(
        X, weights, *a, **k))
    config = dict(epochs=2, mixture_start="full", n_init=3, final_mixture="full")
    reference = small(VaDE, mixture_backend="sklearn", **config).fit(digits.X)
    assert runs == []
    batched = small(VaDE, mixture_backend="torch", **config).fit(digits.X)
    assert runs == [3, 1]  # the start's three restarts in one batch, then the refit
    np.testing.assert_array_equal(batched.initial_labels_, reference.initial_labels_)
    np.testing.assert_array_equal(batched.own_labels_, reference.own_labels_)
    np.testing.assert_array_equal(batched.labels_, reference.labels_)
    np.testing.assert_allclose(batched.final_mixture_.means_, reference.final_mixture_.means_, rtol=1e-6)
    assert batched.mixture_log_likelihoods_["full"] == pytest.approx(reference.mixture_log_likelihoods_["full"])
    # "auto" takes dclib.mixture on a GPU and scikit-learn on the CPU.
    auto = small(VaDE)
    auto.device_ = torch.device("cpu")
    assert auto._em_device() is None
    auto.device_ = torch.device("cuda")  # (only compared, never used)
    assert auto._em_device() == torch.device("cuda")
    with pytest.raises(ValueError, match="mixture_backend must be"):
        small(VaDE, epochs=1, mixture_backend="gpu").fit(digits.X)


def test_vade_rejects_data_outside_unit_interval(digits):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        small(VaDE, epochs=1).fit(digits.X * 16)


def small_iic(**kw):
    base = dict(overcluster_k=20, n_heads=3, epochs=2, batch_size=256, lr=1e-3, channels=(8, 16, 16),
                device="cpu", random_state=0)
    base.update(kw)
    return IIC(10, **base)


def test_iic_api_subheads_and_history(digits, tmp_path):
    model = small_iic().fit(digits.X, digits.y)
    assert model.labels_.shape == (len(digits),)
    assert model.best_subhead_ == int(np.argmin(model.subhead_losses_)) and len(model.subhead_losses_) == 3
    np.testing.assert_array_equal(model.labels_, model.subhead_labels_[model.best_subhead_])
    np.testing.assert_array_equal(model.predict(digits.X), model.labels_)
    proba = model.predict_proba(digits.X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    h = model.history_
    assert h["epoch"] == [0, 1] and {"loss_main", "loss_over", "loss_main_0", "acc_main_2"} <= set(h)
    np.testing.assert_array_equal(small_iic().fit(digits.X).labels_, model.labels_)  # same seed, same labels
    model.save(tmp_path / "iic.pt")
    np.testing.assert_allclose(IIC.load(tmp_path / "iic.pt").predict_proba(digits.X), proba, atol=1e-5)
    with pytest.raises(ValueError, match="images"):
        small_iic().fit(digits.X_flat)


def test_pretrain_augment_changes_the_autoencoder_reproducibly_and_needs_images(digits):
    """``pretrain_augment=True`` pretrains on shifted and rotated digits: a different autoencoder from the
    plain one, the same one again with the same ``random_state`` (CPU)."""
    config = dict(dims=(64, 32, 8), pretrain_epochs=3, device="cpu", random_state=0, cache=False)
    X = digits.X[:300]
    a = AEKMeans(10, pretrain_augment=True, **config).fit(X)
    b = AEKMeans(10, pretrain_augment=True, **config).fit(X)
    plain = AEKMeans(10, **config).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert not np.allclose(a.transform(X), plain.transform(X))
    with pytest.raises(ValueError, match="pretrain_augment"):
        VaDE(10, pretrain_augment=True, **config).fit(X.reshape(300, 64))
