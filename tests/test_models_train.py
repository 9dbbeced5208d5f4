import pytest
import torch

from dclib.models import ConvAutoencoder, MLPAutoencoder, build_autoencoder
from dclib.train import History, pretrain_autoencoder, pretrain_greedy, train
from dclib.utils import get_device


def test_mlp_autoencoder_shapes_and_activations():
    ae = MLPAutoencoder((64, 32, 16, 4))
    x = torch.rand(5, 1, 8, 8)
    z = ae.encode(x)
    assert z.shape == (5, 4) and ae(x).shape == x.shape
    assert (z < 0).any(), "the embedding layer must be linear (can be negative)"
    assert [m.out_features for m in ae.decoder_layers] == [16, 32, 64]


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 16, 16), (1, 8, 8)])
def test_conv_autoencoder_round_trips_shapes(shape):
    ae = ConvAutoencoder(shape, embedding_dim=7)
    x = torch.rand(3, *shape)
    assert ae.encode(x).shape == (3, 7) and ae(x).shape == x.shape


def test_build_autoencoder_adapts_input_size_and_rejects_mismatch():
    assert build_autoencoder("mlp", (1, 8, 8)).dims == (64, 500, 500, 2000, 10)
    with pytest.raises(ValueError, match="expects 784"):
        build_autoencoder(MLPAutoencoder((784, 10)), (1, 8, 8))
    with pytest.raises(ValueError, match="images"):
        build_autoencoder("conv", (64,))


def test_pretraining_lowers_the_loss(digits):
    torch.manual_seed(0)
    X = digits.X[:400]
    ae = MLPAutoencoder((64, 64, 16, 5))
    before = torch.nn.functional.mse_loss(ae(X), X).item()
    hist = pretrain_autoencoder(ae, X, epochs=15, batch_size=64, seed=0, show_progress=False)
    after = torch.nn.functional.mse_loss(ae(X), X).item()
    assert after < 0.5 * before and hist["loss"][-1] < hist["loss"][0]


def test_greedy_pretraining_trains_each_layer_then_finetunes(digits):
    torch.manual_seed(0)
    X = digits.X[:300]
    ae = MLPAutoencoder((64, 32, 8))
    w0 = [layer.weight.clone() for layer in ae.encoder_layers]
    hist = pretrain_greedy(ae, X, layer_epochs=3, finetune_epochs=2, batch_size=64, show_progress=False)
    assert hist["stage"] == [0, 0, 0, 1, 1, 1, -1, -1]
    assert all(not torch.equal(a, b.weight) for a, b in zip(w0, ae.encoder_layers, strict=True))
    with pytest.raises(ValueError, match="MLPAutoencoder"):
        pretrain_greedy(ConvAutoencoder((1, 8, 8)), X, layer_epochs=1, finetune_epochs=1)


def test_pretraining_cache_reuses_weights(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("DCLIB_CACHE", str(tmp_path))
    X = digits.X[:200]
    torch.manual_seed(0)
    a = MLPAutoencoder((64, 16, 4))
    pretrain_autoencoder(a, X, epochs=2, seed=3, show_progress=False)
    assert len(list(tmp_path.glob("ae-*.pt"))) == 1
    b = MLPAutoencoder((64, 16, 4))  # different init: only the cache can make it equal
    pretrain_autoencoder(b, X, epochs=2, seed=3, show_progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = MLPAutoencoder((64, 16, 4))
    pretrain_autoencoder(c, X, epochs=2, seed=3, show_progress=False, force=True)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_train_loop_detects_nan():
    w = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([w], lr=0.1)
    with pytest.raises(FloatingPointError, match="learning rate"):
        train(lambda idx: (w * float("nan")).sum(), opt, 10, epochs=1, batch_size=5,
              device=torch.device("cpu"), show_progress=False)


def test_train_loop_logs_terms_and_stops_early():
    w = torch.nn.Parameter(torch.tensor([3.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    hist = train(lambda idx: {"loss": (w**2).sum(), "w": w.detach().sum()}, opt, 20, epochs=50,
                 batch_size=5, device=torch.device("cpu"), show_progress=False,
                 after_epoch=lambda e, m: m["loss"] < 1e-2)
    assert isinstance(hist, History) and set(hist) >= {"epoch", "loss", "w", "iteration"}
    assert hist["loss"][-1] < 1e-2 < hist["loss"][0] and len(hist["loss"]) < 50


def test_get_device():
    assert get_device("cpu").type == "cpu"
    assert get_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        get_device("tpu:7")


def test_glorot_init_is_the_default_draws_within_the_glorot_bound_and_zero_biases():
    torch.manual_seed(0)
    ae = MLPAutoencoder((784, 500, 10))
    assert ae.init == "glorot"
    for layer in (*ae.encoder_layers, *ae.decoder_layers):
        fan_out, fan_in = layer.weight.shape
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert float(layer.weight.abs().max()) <= bound
        assert float(layer.weight.abs().max()) > 0.95 * bound  # a uniform draw reaches near the edge
        assert torch.count_nonzero(layer.bias) == 0
    torch_init = MLPAutoencoder((784, 500, 10), init="torch")
    # PyTorch's default is U(±1/√fan_in): a different (smaller) bound for the first layer
    assert float(torch_init.encoder_layers[0].weight.abs().max()) < 1 / 784**0.5 + 1e-6
    assert torch.count_nonzero(torch_init.encoder_layers[0].bias) > 0
    assert ae.config() != torch_init.config()  # the pretraining cache keeps them apart
    with pytest.raises(ValueError, match="init"):
        MLPAutoencoder((10, 2), init="he")


# ----------------------------------------------------------------------------- augmented pretraining


class _Blank:
    """A deterministic 'augmentation' that blanks the lower half of each image and counts its calls."""

    calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = x.clone()
        out[..., x.shape[-2] // 2 :, :] = 0.0
        return out

    def __repr__(self) -> str:
        return "_Blank()"


def test_augmented_pretraining_reconstructs_the_transformed_batch(digits):
    """Every batch goes through ``augment`` and the autoencoder learns to reproduce the *transformed* images:
    trained on half-blank digits, it outputs (near) zeros in the blank half, which a plain one does not."""
    X = digits.X[:320]
    blank = _Blank()
    torch.manual_seed(0)
    ae = MLPAutoencoder((64, 64, 16, 5))
    pretrain_autoencoder(ae, X, epochs=20, batch_size=64, augment=blank, seed=None, show_progress=False)
    assert blank.calls == 20 * 5  # 320 = 5 batches of 64, 20 epochs
    torch.manual_seed(0)
    plain = MLPAutoencoder((64, 64, 16, 5))
    pretrain_autoencoder(plain, X, epochs=20, batch_size=64, seed=None, show_progress=False)
    with torch.no_grad():
        lower_aug, lower_plain = ae(X)[..., 4:, :].abs().mean(), plain(X)[..., 4:, :].abs().mean()
    assert lower_aug < 0.3 * lower_plain, (lower_aug, lower_plain)


def test_augmented_pretraining_has_its_own_cache_entry_and_needs_images(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("DCLIB_CACHE", str(tmp_path))
    X = digits.X[:200]
    pretrain_autoencoder(MLPAutoencoder((64, 16, 4)), X, epochs=1, seed=3, show_progress=False)
    pretrain_autoencoder(MLPAutoencoder((64, 16, 4)), X, epochs=1, seed=3, augment=_Blank(), show_progress=False)
    assert len(list(tmp_path.glob("ae-*.pt"))) == 2  # the augmented weights never answer a plain request
    hist = pretrain_autoencoder(MLPAutoencoder((64, 16, 4)), X, epochs=1, seed=3, augment=_Blank(),
                                show_progress=False)
    assert hist.from_cache
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        pretrain_autoencoder(MLPAutoencoder((64, 16, 4)), X.reshape(200, 64), epochs=1, augment=_Blank(),
                             seed=None, show_progress=False)
    with pytest.raises(ValueError, match="end-to-end only"):
        pretrain_autoencoder(MLPAutoencoder((64, 16, 4)), X, method="greedy", epochs=2, augment=_Blank(),
                             seed=None, show_progress=False)


def test_shift_rotate_moves_digits_without_changing_their_ink():
    """DEC-DA's augmentation: shifts and small rotations, no contrast change; values stay in [0, 1]."""
    from dclib.augment import SHIFT_ROTATE, resolve_augment

    torch.manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 12:16] = 1.0  # a bar in the middle, far from the border
    out = SHIFT_ROTATE(x)
    assert out.shape == x.shape and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert (out - x).abs().amax(dim=(1, 2, 3)).gt(0.5).float().mean() > 0.9  # almost every image moved
    torch.testing.assert_close(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)), rtol=0.1, atol=0)  # ink kept
    assert resolve_augment(True) is SHIFT_ROTATE and resolve_augment(None) is None and resolve_augment(False) is None
    with pytest.raises(TypeError, match="augment must be"):
        resolve_augment("yes")
