"""DBC: DEC with the convolutional autoencoder, as a named configuration for images."""

import numpy as np
import pytest
from sklearn.base import clone

from dclib import DBC, DEC, load_dataset
from dclib.models import ConvAutoencoder


def test_dbc_is_dec_with_conv_defaults():
    model = DBC(10)
    assert isinstance(model, DEC)
    p = model.get_params()
    assert p["autoencoder"] == "conv" and p["pretrain"] == "end-to-end"
    assert clone(model).get_params() == p  # scikit-learn can rebuild it from its parameters


def test_dbc_rejects_flat_input_with_the_reshape_to_use(digits):
    with pytest.raises(ValueError, match=r"X\.reshape\(-1, 1, 8, 8\)"):
        DBC(10, device="cpu").fit(digits.X_flat)
    with pytest.raises(ValueError, match="images of shape"):
        DBC(10, device="cpu").fit(np.random.default_rng(0).random((50, 10)))


def test_dec_with_conv_string_on_28x28_images():
    """``DEC(autoencoder="conv")`` builds the 28x28 ConvAutoencoder from the data's shape."""
    data = load_dataset("mnist5k").subset(60)
    assert tuple(data.X.shape[1:]) == (1, 28, 28)
    model = DEC(10, autoencoder="conv", pretrain="end-to-end", pretrain_epochs=1, update_interval=2, max_iter=2,
                n_init=2, cache=False, device="cpu", random_state=0)
    model.fit(data.X)
    assert isinstance(model.autoencoder_, ConvAutoencoder)
    assert model.autoencoder_.input_shape == (1, 28, 28)
    assert model.transform(data.X).shape == (60, 10)
    np.testing.assert_array_equal(model.predict(data.X_flat), model.labels_)  # flat rows are reshaped back


def test_dbc_fits_digits_images(digits):
    model = DBC(10, autoencoder=ConvAutoencoder((1, 8, 8), channels=(8, 16, 16)), pretrain_epochs=3,
                update_interval=10, max_iter=20, n_init=3, device="cpu", random_state=0)
    labels = model.fit_predict(digits.X, digits.y)
    assert labels.shape == (len(digits),)
    np.testing.assert_array_equal(model.predict(digits.X), labels)
    assert {"acc", "kl"} <= set(model.history_) | set(model.epoch_history_)
