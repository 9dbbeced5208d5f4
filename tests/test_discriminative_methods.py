"""IMSAT, DAC and DEPICT estimators: fit on small easy problems, reproducibility, the
scikit-learn API, save/load and input errors (the maths of their losses: test_losses_discriminative)."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from dclib import cluster_acc, load_dataset
from dclib.methods.dac import DAC
from dclib.methods.depict import DEPICT, decoder_layers, encoder_layers
from dclib.methods.imsat import IMSAT
from dclib.models import ConvAutoencoder


def make(name, quick=False):
    """Few-second configurations: IMSAT on the 2-D blobs, DAC and DEPICT on the 8x8 digits.

    ``quick`` is a one- or two-epoch run for the reproducibility test.
    """
    if name == "imsat":
        return IMSAT(4, hidden=(128, 128), epochs=2 if quick else 20, device="cpu", random_state=0)
    if name == "dac":
        return DAC(10, epochs=2 if quick else 10, eta=0.05, batch_size=128, channels=(8, 16, 16), augment=not quick,
                   device="cpu", random_state=0)
    torch.manual_seed(0)  # the autoencoder passed in is built (initialised) here, before fit seeds anything
    return DEPICT(10, autoencoder=ConvAutoencoder((1, 8, 8), channels=(16, 32, 32)), pretrain_epochs=2 if quick else 15,
                  layerwise_epochs=1 if quick else 3, epochs=1 if quick else 3, lr=1e-3, cache=False, device="cpu",
                  random_state=0)


# ACC measured with these settings (seed 0, issue 8): IMSAT 0.93 on the blobs (k-means 0.93, chance 0.25),
# DAC 0.48 on digits (random labels ~0.11). DEPICT has no accuracy floor here: its small conv autoencoder
# on 8x8 digits gives a k-means start near chance and DEPICT stays there (0.13); on mnist5k it goes from
# its k-means start 0.53 to 0.55 (see the issue 8 report).
MIN_ACC = {"imsat": 0.85, "dac": 0.35}
METHODS = ["imsat", "dac", "depict"]
DATA = {"imsat": "blobs", "dac": "digits", "depict": "digits"}


@pytest.fixture(scope="module")
def fitted():
    """Each method fitted once per module (with y, so the history logs ACC)."""
    torch.set_num_threads(1)
    out = {}
    for name in METHODS:
        data = load_dataset(DATA[name])
        out[name] = (data, make(name).fit(data.X, data.y))
    return out


@pytest.mark.parametrize("name", list(MIN_ACC))
def test_fit_beats_chance(fitted, name):
    data, model = fitted[name]
    assert cluster_acc(data.y.numpy(), model.labels_) > MIN_ACC[name]


@pytest.mark.parametrize("name", METHODS)
def test_predict_matches_labels_and_proba(fitted, name):
    data, model = fitted[name]
    labels = model.labels_
    assert labels.shape == (len(data),) and labels.dtype == np.int64
    np.testing.assert_array_equal(model.predict(data.X), labels)
    proba = model.predict_proba(data.X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), labels)
    assert {"loss", "acc", "nmi", "ari"} <= set(model.history_)


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_same_labels(fitted, name):
    data = fitted[name][0]
    a, b = make(name, quick=True).fit(data.X), make(name, quick=True).fit(data.X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.predict_proba(data.X), b.predict_proba(data.X))


@pytest.mark.parametrize("name", METHODS)
def test_save_load_round_trip(fitted, name, tmp_path):
    data, model = fitted[name]
    model.save(tmp_path / "model.pt")
    loaded = type(model).load(tmp_path / "model.pt")
    assert loaded.get_params().keys() == model.get_params().keys()
    np.testing.assert_array_equal(loaded.labels_, model.labels_)
    np.testing.assert_allclose(loaded.predict_proba(data.X), model.predict_proba(data.X), atol=1e-5)


def test_wrong_input_shapes_raise_clear_errors(fitted):
    data, imsat = fitted["imsat"]
    with pytest.raises(ValueError, match="features per sample"):
        imsat.predict(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="shape"):
        IMSAT(4, device="cpu").fit(np.zeros(10))
    digits = fitted["dac"][0]
    for cls in (DAC, DEPICT):
        with pytest.raises(ValueError, match="images"):
            cls(10, epochs=1, device="cpu").fit(digits.X_flat)
    with pytest.raises(ValueError, match="ConvAutoencoder"):
        DEPICT(10, autoencoder="mlp", device="cpu").fit(digits.X)


def test_imsat_radius_is_a_fraction_of_the_10th_neighbour_distance(fitted):
    data, model = fitted["imsat"]
    dist, _ = NearestNeighbors(n_neighbors=11).fit(data.X.numpy()).kneighbors(data.X.numpy())
    np.testing.assert_allclose(model.eps_.numpy(), 0.25 * dist[:, 10], rtol=1e-4, atol=1e-6)
    h = model.history_
    assert {"vat", "cond_entropy", "marg_entropy"} <= set(h)
    # the objective did its job: confident and balanced predictions at the end
    assert h["cond_entropy"][-1] < h["cond_entropy"][0] and h["marg_entropy"][-1] > np.log(4) - 0.1


def test_dac_thresholds_follow_the_schedule_and_stop_when_they_meet(fitted):
    model = fitted["dac"][1]
    h = model.history_
    np.testing.assert_allclose(h["lamb"], 0.055 * np.arange(len(h["lamb"])), atol=1e-9)
    assert all(np.diff(h["upper"]) < 0) and all(np.diff(h["lower"]) > 0)
    # λ steps 1.1 η = 0.055 per epoch, u(λ) ≤ l(λ) from λ = 0.45: training stops after 9 of the 10 epochs
    assert model.converged_ and len(h["loss"]) == 9
    assert h["selected"][-1] > h["selected"][0]  # the curriculum uses more pairs as the thresholds tighten


def test_depict_layers_mirror_and_history(fitted):
    data, model = fitted["depict"]
    ae = model.autoencoder_
    x = data.X[:5]
    enc = encoder_layers(ae, x)
    dec = decoder_layers(ae, enc[-1], [h.shape for h in enc[:-1]])
    assert [h.shape for h in dec] == [h.shape for h in enc[:-1]]
    torch.testing.assert_close(dec[0], ae(x))  # the first decoder layer is the reconstruction
    noisy = encoder_layers(ae, x, dropout=0.5)
    assert not torch.equal(noisy[-1], enc[-1])
    assert {"cross_entropy", "reconstruction"} <= set(model.history_) and len(model.initial_labels_) == len(data)


@pytest.mark.parametrize("name", ["imsat", "dac"])
def test_batch_norm_methods_fit_when_one_sample_is_left_over(name):
    # n % batch_size == 1 would leave a last batch of one sample, which batch norm cannot train on
    rng = np.random.default_rng(0)
    if name == "imsat":
        model = IMSAT(3, hidden=(16, 16), epochs=1, batch_size=16, device="cpu", random_state=0)
        X = rng.normal(size=(33, 4)).astype(np.float32)
    else:
        model = DAC(3, epochs=1, batch_size=16, channels=(4, 4, 4), augment=False, device="cpu", random_state=0)
        X = rng.random((33, 1, 8, 8)).astype(np.float32)
    assert len(model.fit(X).labels_) == 33
