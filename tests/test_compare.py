import numpy as np
import pytest

from dclib import evaluate, load_dataset
from dclib.compare import compare, make_estimator, summarise


def test_compare_keeps_the_fitted_models_it_scored():
    data = load_dataset("digits")
    models = {}
    runs = compare(data, "kmeans,kmeans-pca", seeds=[0, 1], device="cpu", verbose=False, models=models)
    assert set(models) == {("kmeans", 0), ("kmeans", 1), ("kmeans-pca", 0), ("kmeans-pca", 1)}
    for row in runs.itertuples():
        model = models[(row.method, row.seed)]
        assert model.random_state == row.seed
        assert evaluate(data.y, model.labels_)["acc"] == pytest.approx(row.acc)
    assert list(summarise(runs)["seeds"]) == [2, 2]


def test_compare_rows_match_a_fit_by_hand():
    """compare() adds nothing to the estimator: the same factory and seed give the same labels."""
    data = load_dataset("digits")
    runs = compare(data, "kmeans", seeds=[3], device="cpu", verbose=False)
    by_hand = make_estimator("kmeans", data.n_clusters, 3, "cpu").fit(data.X)
    assert runs.loc[0, "acc"] == pytest.approx(evaluate(data.y, by_hand.labels_)["acc"])
    assert np.isfinite(runs.loc[0, "seconds"]) and runs.loc[0, "n"] == len(data)


@pytest.mark.parametrize("name", ["infogan", "catgan", "den", "embedding", "jule"])
def test_the_newest_methods_run_through_compare_in_fast_mode(name):
    """The factories of lectures 10-11: right estimator, and a fast fit gives one label per sample."""
    from dclib.compare import METHODS

    data = load_dataset("mnist5k").subset(120, random_state=0)
    models = {}
    runs = compare(data, name, seeds=[0], device="cpu", fast=True, verbose=False, models=models)
    model = models[(name, 0)]
    assert type(model).__name__.lower().startswith(name[:3]) and name in METHODS
    assert model.labels_.shape == (120,) and runs.loc[0, "n"] == 120
    assert 0.0 <= runs.loc[0, "acc"] <= 1.0


def test_a_method_that_reuses_a_cached_autoencoder_is_charged_its_cost():
    """make demo shares autoencoders through the cache; seconds_with_pretraining adds their cost back."""
    from dclib.compare import format_table, with_pretraining_costs

    data = load_dataset("digits").subset(300, random_state=0)
    models = {}
    runs = compare(data, "ae-kmeans,dec", seeds=[0], device="cpu", fast=True, verbose=False, models=models)
    first, second = models[("ae-kmeans", 0)], models[("dec", 0)]
    assert not first.pretrain_from_cache_ and second.pretrain_from_cache_  # DEC loaded AE + k-means's weights
    assert first.pretrain_cost_seconds_ > 0
    assert second.pretrain_cost_seconds_ == pytest.approx(first.pretrain_cost_seconds_)  # saved with the weights
    ae_row, dec_row = runs.iloc[0], runs.iloc[1]
    assert ae_row["seconds_with_pretraining"] == ae_row["seconds"]  # it paid its pretraining inside fit
    assert dec_row["seconds_with_pretraining"] == pytest.approx(dec_row["seconds"] + first.pretrain_cost_seconds_)
    summary = summarise(runs)
    costs = with_pretraining_costs(summary)
    assert costs.loc[1, "seconds_mean"] == pytest.approx(dec_row["seconds_with_pretraining"])
    assert summary.loc[1, "seconds_mean"] == pytest.approx(dec_row["seconds"])  # the summary itself is unchanged
    assert "s with pretraining" in format_table(summary).splitlines()[0]
    # without reuse, every fit pretrains: nothing is charged twice
    fresh = compare(data, "dec", seeds=[0], device="cpu", fast=True, verbose=False, reuse_pretraining=False)
    assert not fresh.loc[0, "pretrain_from_cache"]
    assert fresh.loc[0, "seconds_with_pretraining"] == fresh.loc[0, "seconds"]


def test_charged_pretraining_seconds_follows_the_cache():
    from types import SimpleNamespace

    from dclib.compare import charged_pretraining_seconds

    assert charged_pretraining_seconds(SimpleNamespace()) == 0.0  # k-means: no autoencoder
    assert charged_pretraining_seconds(SimpleNamespace(pretrain_from_cache_=False, pretrain_cost_seconds_=9.0)) == 0.0
    assert charged_pretraining_seconds(SimpleNamespace(pretrain_from_cache_=True, pretrain_cost_seconds_=9.0)) == 9.0
    # a cache written before the cost was recorded: unknown, not free
    old_cache = SimpleNamespace(pretrain_from_cache_=True, pretrain_cost_seconds_=None)
    assert np.isnan(charged_pretraining_seconds(old_cache))
