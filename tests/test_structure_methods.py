"""DEN, EmbeddingClustering and JULE: the estimator API (fit/predict/labels_/history_), save/load,
determinism, clear errors, and that each finds obvious clusters."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs

from dclib import ari
from dclib.methods import DEN, JULE, EmbeddingClustering
from dclib.methods.den import coordinate_groups

SMALL = dict(dims=(64, 32, 8), pretrain="end-to-end", pretrain_epochs=3, batch_size=64, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def small_digits():
    from dclib import load_dataset

    d = load_dataset("digits")
    return d.X[:300], d.y[:300].numpy()


def _den(**kw):
    return DEN(**{**SMALL, "n_clusters": 5, "epochs": 2, "n_neighbors": 4, "n_groups": 4, **kw})


def _emb(**kw):
    return EmbeddingClustering(**{**SMALL, "n_clusters": 5, "epochs": 2, "hidden": (32,), "embedding_dim": 4, **kw})


def _jule(**kw):
    return JULE(**{**dict(n_clusters=5, n_neighbors=5, feature_dim=16, channels=(8, 8), batch_size=64, device="cpu",
                          random_state=0), **kw})


BUILDERS = {"DEN": _den, "EmbeddingClustering": _emb, "JULE": _jule}


@pytest.mark.parametrize("name", BUILDERS)
def test_fit_predict_history_save_load(name, small_digits, tmp_path):
    X, y = small_digits
    model = BUILDERS[name]().fit(X, y)
    assert model.labels_.shape == (300,) and model.labels_.dtype == np.int64
    assert set(model.labels_.tolist()) <= set(range(5))
    assert "acc" in model.history_ and len(model.history_["loss"]) >= 1
    np.testing.assert_array_equal(model.predict(X[:50]), model.predict(X[:50].reshape(50, -1)))
    if name != "JULE":  # k-means on the final embedding: predict on the training data is labels_
        np.testing.assert_array_equal(model.predict(X), model.labels_)
    model.save(tmp_path / "m.pt")
    loaded = type(model).load(tmp_path / "m.pt")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("name", BUILDERS)
def test_same_seed_same_labels(name, small_digits):
    X, _ = small_digits
    a, b = BUILDERS[name]().fit(X).labels_, BUILDERS[name]().fit(X).labels_
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", BUILDERS)
def test_bad_input_gives_clear_errors(name, small_digits):
    X, _ = small_digits
    bad = X.clone()
    bad[3, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        BUILDERS[name]().fit(bad)
    with pytest.raises(ValueError, match="n_clusters"):
        BUILDERS[name](n_clusters=400).fit(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        BUILDERS[name]().predict(X)


def test_hyperparameter_errors(small_digits):
    X, _ = small_digits
    with pytest.raises(ValueError, match="n_neighbors"):
        _den(n_neighbors=300).fit(X)
    with pytest.raises(ValueError, match="n_groups"):
        _den(n_groups=9).fit(X)
    with pytest.raises(ValueError, match="degrees of freedom"):
        _emb(alpha_e=0.0).fit(X)
    with pytest.raises(ValueError, match="merge_rate"):
        _jule(merge_rate=0.0).fit(X)
    with pytest.raises(ValueError, match="n_neighbors"):
        _jule(n_neighbors=0).fit(X)


def test_jule_history_goes_down_to_n_clusters(small_digits):
    X, y = small_digits
    model = _jule().fit(X, y)
    counts = model.history_["n_clusters"]
    assert counts[-1] == 5 and all(a > b for a, b in zip(counts, counts[1:], strict=False))
    assert model.initial_n_clusters_ > counts[0]
    assert model.history_["nmi"][-1] > 0.5  # 5 clusters of 10 classes: ACC cannot exceed about 0.5, NMI can


def test_methods_separate_blobs():
    X, y = make_blobs(400, centers=4, n_features=2, cluster_std=0.5, random_state=0)
    X = X.astype(np.float32)
    jule = JULE(n_clusters=4, n_neighbors=8, feature_dim=8, batch_size=64, device="cpu", random_state=0).fit(X)
    assert jule.history_["n_clusters"][-1] == 4
    assert ari(y, jule.labels_) > 0.9
    ae = dict(dims=(2, 16, 4), pretrain="end-to-end", pretrain_epochs=100, pretrain_lr=1e-2, batch_size=50,
              device="cpu", random_state=0)  # a well-trained autoencoder: k-means on its codes has ARI 1
    emb = EmbeddingClustering(4, hidden=(16,), embedding_dim=2, epochs=10, lr=1e-2, **ae).fit(X)
    assert ari(y, emb.labels_) > 0.9
    den = DEN(4, epochs=3, n_groups=2, **ae).fit(X)
    assert ari(y, den.labels_) > 0.9


def test_coordinate_groups_put_correlated_units_together():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 1, generator=g), torch.randn(200, 1, generator=g)
    Z = torch.cat([a, 2 * a + 0.01 * torch.randn(200, 1, generator=g), b, -b + 0.01 * torch.randn(200, 1, generator=g),
                   3 * a], 1)
    groups = coordinate_groups(Z, 2, random_state=0).tolist()
    assert groups[0] == groups[1] == groups[4] and groups[2] != groups[0]
    assert coordinate_groups(Z, 5).tolist() == list(range(5))


def test_jule_absorbs_fragments_in_its_last_period_only(small_digits, monkeypatch):
    # Only the merge down to n_clusters may use the fragment rule: in earlier periods almost every cluster is
    # smaller than the final minimum size, and absorbing them all would replace GDL's order altogether.
    import dclib.methods.jule as jule_module

    calls = []
    real = jule_module.gdl_merge

    def spy(W, labels, n_clusters, record=False, min_size=1):
        calls.append((n_clusters, min_size))
        return real(W, labels, n_clusters, record=record, min_size=min_size)

    monkeypatch.setattr(jule_module, "gdl_merge", spy)
    X, _ = small_digits
    model = _jule(epochs_per_period=0).fit(X)
    assert model.min_cluster_size_ == max(1, len(X) // 500)  # "auto": 1 % of the mean cluster size n / K
    assert calls[-1] == (5, model.min_cluster_size_) and all(size == 1 for _, size in calls[:-1])
    assert _jule(epochs_per_period=0, min_cluster_size=7).fit(X).min_cluster_size_ == 7
    for bad in (0, "big", 2.5):
        with pytest.raises(ValueError, match="min_cluster_size"):
            _jule(min_cluster_size=bad).fit(X)
