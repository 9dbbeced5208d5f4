"""dclib.mixture: scikit-learn's full-covariance EM, batched over restarts in torch, must be scikit-learn's EM.

Its E-step against scipy's densities, one restart and component at a time: tests/test_checks_vade.py (the lab 04
check's reference).
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from dclib import mixture
from dclib.methods.vade import _full_mixture
from dclib.mixture import restart_states

TOL = dict(rtol=1e-8, atol=1e-10)


def _correlated_blobs(n_per: int = 150, k: int = 6, seed: int = 0) -> np.ndarray:
    """k tilted, stretched 3-D clusters, close enough that EM's restarts end in different optima."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(n_per, 3)) @ rng.normal(size=(3, 3)) + 3.0 * rng.normal(size=3) for _ in range(k)]
    return np.concatenate(parts)


def _sklearn_restart(Z, k, state, **options) -> GaussianMixture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(k, covariance_type="full", init_params="k-means++", random_state=state,
                               **options).fit(Z)


def test_every_batched_restart_is_the_scikit_learn_run_from_the_same_seeds():
    # Each restart stops on its own; one that stopped must not move while the others go on, so every restart's
    # likelihood, iteration count and parameters must be those of its own scikit-learn run.
    Z = _correlated_blobs()
    states = restart_states(Z, 6, 8, 0)
    reference = [_sklearn_restart(Z, 6, state) for state in restart_states(Z, 6, 8, 0)]
    seeds = np.stack([mixture.kmeans_plusplus(Z, 6, random_state=s)[1] for s in states])
    X = torch.as_tensor(Z)
    fit = mixture.full_em(X, *mixture._start(X, mixture._seeded(X, seeds), 1e-6))
    assert len({g.n_iter_ for g in reference}) > 1  # restarts that stop at different iterations
    assert len({round(g.lower_bound_, 6) for g in reference}) > 1  # ... and in different optima
    for r, gmm in enumerate(reference):
        assert int(fit["n_iter"][r]) == gmm.n_iter_ and bool(fit["converged"][r]) == gmm.converged_
        np.testing.assert_allclose(float(fit["lower_bound"][r]), gmm.lower_bound_, **TOL)
        np.testing.assert_allclose(fit["means"][r].numpy(), gmm.means_, **TOL)
        np.testing.assert_allclose(fit["covariances"][r].numpy(), gmm.covariances_, **TOL)
        np.testing.assert_allclose(fit["weights"][r].numpy(), gmm.weights_, **TOL)


def test_the_kept_restart_is_the_one_n_init_keeps():
    Z = _correlated_blobs(seed=2)
    reference = GaussianMixture(6, covariance_type="full", init_params="k-means++", n_init=8, random_state=5).fit(Z)
    kept = mixture.kmeanspp_mixture(Z, 6, 8, 5, "cpu")
    assert isinstance(kept, GaussianMixture) and kept.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(kept.lower_bound_, reference.lower_bound_, **TOL)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        np.testing.assert_allclose(getattr(kept, name), getattr(reference, name), **TOL)
    np.testing.assert_array_equal(kept.predict(Z), reference.predict(Z))  # a usable fitted scikit-learn object
    np.testing.assert_allclose(kept.score(Z), reference.score(Z), **TOL)


def test_refining_from_given_parameters_is_scikit_learns_refinement():
    Z = _correlated_blobs(seed=3)
    start = _sklearn_restart(Z[::4], 6, 0)  # fitted on a quarter of the points, refined on all
    reference = GaussianMixture(6, covariance_type="full", weights_init=start.weights_, means_init=start.means_,
                                precisions_init=start.precisions_, random_state=0).fit(Z)
    refined = mixture.refined_mixture(Z, start, "cpu", 0)
    assert refined.n_iter_ == reference.n_iter_ > 1
    np.testing.assert_allclose(refined.lower_bound_, reference.lower_bound_, **TOL)
    np.testing.assert_allclose(refined.covariances_, reference.covariances_, **TOL)
    np.testing.assert_allclose(refined.precisions_, reference.precisions_, rtol=1e-7)


def test_refitting_from_given_means_is_scikit_learns_refit():
    # Only the means are given: weights and covariances start from one k-means run with the same random state.
    Z = _correlated_blobs(seed=4)
    means = _sklearn_restart(Z, 6, 1).means_ + 0.3
    reference = GaussianMixture(6, covariance_type="full", means_init=means, random_state=7).fit(Z)
    refitted = mixture.refitted_mixture(Z, means, "cpu", 7)
    assert refitted.n_iter_ == reference.n_iter_ > 1
    np.testing.assert_allclose(refitted.lower_bound_, reference.lower_bound_, **TOL)
    np.testing.assert_allclose(refitted.means_, reference.means_, **TOL)
    other = mixture.refitted_mixture(Z, means, "cpu", 8)  # the check above can tell k-means starts apart
    assert not np.allclose(other.covariances_, reference.covariances_)


def test_a_collapsed_component_is_a_clear_error():
    Z = np.repeat(np.random.default_rng(0).normal(size=(3, 2)), 20, axis=0)  # three distinct points, four clusters
    X = torch.as_tensor(Z)
    resp = mixture._seeded(X, np.array([[0, 20, 40, 1]]))  # two seeds on the same point
    with pytest.raises(ValueError, match="not positive definite.*reg_covar"):
        mixture.full_em(X, *mixture._start(X, resp, 1e-6), reg_covar=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        mixture.full_em(X, *mixture._start(X, resp, 1e-6), max_iter=0)


def test_vade_full_start_on_a_device_is_the_scikit_learn_start(monkeypatch):
    # The restarts on a sample, then the refinement on all points: the same mixture from either backend.
    from dclib.methods import vade as vade_module

    Z = _correlated_blobs(n_per=100)
    monkeypatch.setattr(vade_module, "START_SAMPLE_SIZE", 350)
    on_cpu = _full_mixture(Z, 6, 4, 0)
    on_device = _full_mixture(Z, 6, 4, 0, device=torch.device("cpu"))
    np.testing.assert_allclose(on_device.lower_bound_, on_cpu.lower_bound_, **TOL)
    np.testing.assert_allclose(on_device.means_, on_cpu.means_, **TOL)
    np.testing.assert_array_equal(on_device.predict(Z), on_cpu.predict(Z))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_restarts_on_a_gpu_are_the_restarts_on_the_cpu():
    # float64 on the GPU: other kernels, the same EM (and so the same optimum kept, to rounding).
    Z = _correlated_blobs(seed=6)
    on_cpu = mixture.kmeanspp_mixture(Z, 6, 8, 0, "cpu")
    on_gpu = mixture.kmeanspp_mixture(Z, 6, 8, 0, torch.device("cuda"))
    assert on_gpu.n_iter_ == on_cpu.n_iter_
    np.testing.assert_allclose(on_gpu.lower_bound_, on_cpu.lower_bound_, **TOL)
    np.testing.assert_allclose(on_gpu.covariances_, on_cpu.covariances_, rtol=1e-7, atol=1e-9)
    refit = mixture.refitted_mixture(Z, on_cpu.means_, torch.device("cuda"), 0)
    np.testing.assert_allclose(refit.means_, mixture.refitted_mixture(Z, on_cpu.means_, "cpu", 0).means_, **TOL)
