"""InfoGAN and CatGAN estimators: the scikit-learn API, sampling, save/load, determinism, errors and
the mode-collapse warning, on tiny nets and the 8x8 digits (the maths: test_losses_adversarial)."""

import warnings

import numpy as np
import pytest
import torch

from dclib import load_dataset
from dclib.gan_models import image_shape_of, train_adversarial
from dclib.methods import CatGAN, DegenerateClusteringWarning, InfoGAN

SMALL = dict(width=8, hidden=32, batch_size=64, device="cpu", random_state=0)


def make(name, epochs=2, **kw):
    if name == "infogan":
        return InfoGAN(4, noise_dim=8, n_continuous=1, epochs=epochs, **(SMALL | kw))
    return CatGAN(4, noise_dim=8, epochs=epochs, **(SMALL | kw))


@pytest.fixture(scope="module")
def data():
    d = load_dataset("digits")
    return d.X[:256], d.y[:256].numpy()


@pytest.fixture(scope="module")
def fitted(data):
    torch.set_num_threads(1)
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateClusteringWarning)  # two epochs: collapse is allowed here
        return {name: make(name).fit(X, y) for name in ("infogan", "catgan")}


HISTORY = {"infogan": {"d_loss", "g_loss", "d_adv", "g_adv", "info_cat", "info_cont", "acc", "nmi", "ari"},
           "catgan": {"d_loss", "g_loss", "cond_entropy_real", "marg_entropy_real", "cond_entropy_fake",
                      "marg_entropy_fake", "acc", "nmi", "ari"}}


@pytest.mark.parametrize("name", ["infogan", "catgan"])
def test_api_predict_proba_and_history(fitted, data, name):
    X, _ = data
    model = fitted[name]
    assert model.labels_.shape == (256,) and model.labels_.dtype == np.int64
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_array_equal(model.predict(X.reshape(256, -1)), model.labels_)  # flat images work too
    proba = model.predict_proba(X)
    assert proba.shape == (256, 4)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), model.labels_)
    assert HISTORY[name] <= set(model.history_)
    assert len(model.history_["d_loss"]) == len(model.history_["acc"]) == 2
    assert model.generated_cluster_sizes_.sum() == 2000


@pytest.mark.parametrize("name", ["infogan", "catgan"])
def test_sample_shapes_and_range(fitted, name):
    model = fitted[name]
    images = model.sample(5, random_state=1)
    assert images.shape == (5, 1, 8, 8) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(images, model.sample(5, random_state=1))
    with pytest.raises(ValueError, match="cluster must be"):
        model.sample(3, cluster=4)
    with pytest.raises(ValueError, match="positive integer"):
        model.sample(0)


def test_catgan_sample_per_cluster_is_classified_as_that_cluster(fitted):
    model = fitted["catgan"]
    used = int(np.argmax(model.generated_cluster_sizes_))
    images = model.sample(6, cluster=used, random_state=0)
    assert images.shape == (6, 1, 8, 8)
    assert (model.predict(images) == used).all()


def test_infogan_sample_per_cluster_fixes_the_code(fitted):
    model = fitted["infogan"]
    a, b = model.sample(4, cluster=0, random_state=3), model.sample(4, cluster=1, random_state=3)
    assert a.shape == (4, 1, 8, 8) and not np.allclose(a, b)  # same noise, another code: other images


def test_infogan_learns_to_read_its_code():
    """On the digits Q recovers the generator's code well above chance after a short fit (λ = 4 to be quick)."""
    d = load_dataset("digits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateClusteringWarning)
        model = InfoGAN(4, noise_dim=8, n_continuous=0, epochs=3, width=8, hidden=32, batch_size=32,
                        lr_g=2e-3, lr_d=2e-3, lambda_info=4.0, device="cpu", random_state=0).fit(d.X[:320])
    info = model.history_["info_cat"]
    assert info[0] < 0.1 < info[-1]  # the bound starts near 0 (uniform Q) and grows
    hits = [float((model.predict(model.sample(100, cluster=c, random_state=c)) == c).mean()) for c in range(4)]
    assert np.mean(hits) > 0.6  # chance is 0.25


@pytest.mark.parametrize("name", ["infogan", "catgan"])
def test_same_seed_same_result_and_save_load(fitted, data, name, tmp_path):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateClusteringWarning)
        again = make(name).fit(X, y)
    np.testing.assert_array_equal(again.labels_, fitted[name].labels_)
    np.testing.assert_allclose(again.predict_proba(X), fitted[name].predict_proba(X))
    path = tmp_path / "gan.pt"
    fitted[name].save(path)
    loaded = type(fitted[name]).load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict(X), fitted[name].labels_)
    np.testing.assert_array_equal(loaded.sample(3, random_state=0), fitted[name].sample(3, random_state=0))


@pytest.mark.parametrize("name", ["infogan", "catgan"])
def test_bad_input_errors(data, name):
    X, _ = data
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make(name).fit(X * 255)
    with pytest.raises(ValueError, match="NaN"):
        bad = X.clone()
        bad[0, 0, 0, 0] = float("nan")
        make(name).fit(bad)
    with pytest.raises(ValueError, match="square flat images"):
        make(name).fit(torch.rand(20, 10))
    with pytest.raises(ValueError, match="multiples of 4"):
        make(name).fit(torch.rand(20, 1, 6, 6))
    with pytest.raises(ValueError, match="larger than the number of samples"):
        make(name).fit(X[:3])
    with pytest.raises(ValueError, match="epochs"):
        make(name, epochs=0).fit(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        make(name).predict(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        make(name).sample(2)


def test_image_shape_of():
    assert image_shape_of(torch.zeros(2, 784)) == (1, 28, 28)
    assert image_shape_of(torch.zeros(2, 3, 8, 12)) == (3, 8, 12)


@pytest.mark.parametrize("name", ["infogan", "catgan"])
def test_mode_collapse_warns_for_generator_and_predictions(fitted, name, monkeypatch):
    model = fitted[name]
    monkeypatch.setattr(model, "labels_", np.arange(400) % 4)
    monkeypatch.setattr(model, "generated_cluster_sizes", lambda: np.array([1000, 990, 10, 0]))
    with pytest.warns(DegenerateClusteringWarning, match=r"mode collapse .* clusters \[2, 3\]"):
        model._warn_if_degenerate()
    monkeypatch.setattr(model, "generated_cluster_sizes", lambda: np.array([500, 500, 500, 500]))
    monkeypatch.setattr(model, "labels_", np.array([0] * 100 + [1] * 100 + [2] * 100))
    with pytest.warns(DegenerateClusteringWarning, match=r"clusters \[3\] are empty"):
        model._warn_if_degenerate()
    monkeypatch.setattr(model, "labels_", np.arange(400) % 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model._warn_if_degenerate()  # balanced everywhere: silent


def test_train_adversarial_alternates_and_logs_both_players():
    calls = []

    def d_step(idx):
        calls.append("d")
        return {"loss": w.sum() * 0 + 1.0, "d_extra": torch.tensor(2.0)}

    def g_step(idx):
        calls.append("g")
        return {"loss": w.sum() * 0 + 3.0}

    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    hist = train_adversarial(d_step, g_step, opt, opt, 10, epochs=2, batch_size=4, device=torch.device("cpu"),
                             show_progress=False)
    assert calls == ["d", "g"] * 6  # 3 batches per epoch, D then G
    assert hist["d_loss"] == [1.0, 1.0] and hist["g_loss"] == [3.0, 3.0] and hist["d_extra"] == [2.0, 2.0]


def test_infogan_paper_architecture_options_build_the_paper_layers(data):
    """q_hidden, gen_hidden and batch_norm (issue #10) change the networks; the defaults keep the course's."""
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateClusteringWarning)
        model = make("infogan", epochs=1, q_hidden=16, gen_hidden=24, batch_norm=True, spectral_norm=False).fit(X, y)
    d, g = model.discriminator_, model.generator_
    q = d.heads["q"]
    assert isinstance(q, torch.nn.Sequential) and q[0].out_features == 16 and isinstance(q[1], torch.nn.BatchNorm1d)
    assert q[-1].out_features == 4 + 2 * 1  # K logits + a mean and a log-variance per continuous code
    assert isinstance(d.heads["d"], torch.nn.Linear)  # only Q gets the hidden layer
    kinds = [type(m) for m in d.body]
    assert torch.nn.BatchNorm2d in kinds and torch.nn.BatchNorm1d in kinds
    assert not any(name.endswith("weight_orig") for name, _ in d.named_parameters())  # no spectral norm
    assert g.fc[0].out_features == 24 and isinstance(g.fc[1], torch.nn.BatchNorm1d)
    proba = model.predict_proba(X)
    assert proba.shape == (256, 4) and np.isfinite(proba).all()
    default = make("infogan", epochs=1)  # the defaults, unfitted
    assert (default.q_hidden, default.gen_hidden, default.batch_norm, default.label_smoothing) == (0, 0, False, 0.0)


def test_default_gan_networks_have_no_batch_norm_in_d_and_linear_heads(fitted):
    """CatGAN (and InfoGAN's defaults) keep the spectrally normalised D without batch norm or head layers."""
    for name in ("infogan", "catgan"):
        d = fitted[name].discriminator_
        assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in d.modules())
        assert all(isinstance(h, torch.nn.Linear) for h in d.heads.values())
        assert any(n.endswith("weight_orig") for n, _ in d.named_parameters())
    assert fitted["infogan"].generator_.fc[0].in_features == 8 + 4 + 1  # noise + code + continuous: no extra layer


def test_infogan_label_smoothing_sets_the_real_target(data, monkeypatch):
    """One-sided smoothing: D's real/fake BCE sees the real target 1 − s (fakes keep 0, G keeps 1)."""
    X, _ = data
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    targets: set[float] = set()

    def spy(logits, target, *args, **kw):
        targets.update(float(t) for t in target.unique())
        return bce(logits, target, *args, **kw)

    monkeypatch.setattr(torch.nn.functional, "binary_cross_entropy_with_logits", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateClusteringWarning)
        make("infogan", epochs=1, label_smoothing=0.2).fit(X)
        assert sorted(targets) == pytest.approx([0.0, 0.8, 1.0])
        targets.clear()
        make("infogan", epochs=1).fit(X)
        assert sorted(targets) == [0.0, 1.0]


def test_infogan_bad_option_errors(data):
    X, _ = data
    with pytest.raises(ValueError, match="q_hidden"):
        make("infogan", q_hidden=-1).fit(X)
    with pytest.raises(ValueError, match="gen_hidden"):
        make("infogan", gen_hidden=2.5).fit(X)
    with pytest.raises(ValueError, match="label_smoothing"):
        make("infogan", label_smoothing=0.7).fit(X)


def test_train_adversarial_g_steps_runs_several_generator_steps_per_d_step():
    calls = []
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    train_adversarial(lambda idx: calls.append("d") or {"loss": w.sum()}, lambda idx: calls.append("g") or {
        "loss": w.sum()}, opt, opt, 8, epochs=1, batch_size=4, device=torch.device("cpu"), show_progress=False,
        g_steps=2)
    assert calls == ["d", "g", "g"] * 2


def test_infogan_g_steps_reaches_the_loop(data, monkeypatch):
    import dclib.gan_models as gm

    seen = []
    original = gm.train_adversarial
    monkeypatch.setattr(gm, "train_adversarial", lambda *a, **kw: seen.append(kw["g_steps"]) or original(*a, **kw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateClusteringWarning)
        make("infogan", epochs=1, g_steps=2).fit(data[0])
    assert seen == [2]
    with pytest.raises(ValueError, match="g_steps"):
        make("infogan", g_steps=0).fit(data[0])


def test_infogan_noise_std_scales_only_the_noise():
    model = make("infogan", noise_std=0.1)
    model.device_ = torch.device("cpu")
    z = model._codes(4000, torch.Generator().manual_seed(0))[0]
    assert z[:, :8].std().item() == pytest.approx(0.1, rel=0.05)  # noise_dim = 8 Gaussian entries, std 0.1
    assert set(z[:, 8:12].unique().tolist()) == {0.0, 1.0} and z[:, 12:].abs().max() <= 1  # code untouched
    with pytest.raises(ValueError, match="noise_std"):
        make("infogan", noise_std=0.0).fit(torch.rand(64, 1, 8, 8))


def test_infogan_instance_noise_reaches_the_discriminator_only_in_training(data, monkeypatch):
    """D sees noisy images (values outside [0, 1]) while training with instance_noise, clean ones otherwise."""
    from dclib.gan_models import DCGANDiscriminator

    X, _ = data
    lows: list[float] = []
    forward = DCGANDiscriminator.forward
    monkeypatch.setattr(DCGANDiscriminator, "forward",
                        lambda self, x: lows.append(float(x.detach().min())) or forward(self, x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateClusteringWarning)
        model = make("infogan", epochs=1, instance_noise=0.3).fit(X)
        assert min(lows) < -0.3  # noise of std 0.3 on 256 x 64 pixels goes well below 0
        lows.clear()
        model.predict(X)
        assert min(lows) >= 0  # predict reads the clean images
        lows.clear()
        make("infogan", epochs=1).fit(X)
        assert min(lows) >= 0
    with pytest.raises(ValueError, match="instance_noise"):
        make("infogan", instance_noise=-0.1).fit(X)
