"""Data-parallel training (dclib.distributed): 2 gloo processes give the single-process numbers.

Each spawned test starts two CPU processes (``launch_local``), on a free port, with tiny data.
"""

import math

import numpy as np
import pytest
import torch

from dclib import distributed as dist
from dclib.losses import dec_loss, iic_joint, iic_loss, student_t_assignment, target_distribution
from dclib.methods import DCN, DEC, IIC
from dclib.models import MLPAutoencoder
from dclib.train import train
from dclib.utils import make_generator

N, D, K = 64, 12, 3
BATCH = 37  # odd: the two shards of a batch are 19 and 18 samples


def _data(dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(K, D, generator=g, dtype=dtype) * 3
    return centers[torch.arange(N) % K] + torch.randn(N, D, generator=g, dtype=dtype)


def _probs(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(N, K, generator=g, dtype=torch.float64), dim=1)


def _dec_model():
    torch.manual_seed(0)
    ae = MLPAutoencoder((D, 16, 4)).double()
    mu = torch.nn.Parameter(torch.randn(K, 4, dtype=torch.float64))
    return ae, mu


def _dec_one_step() -> dict:
    """One DEC step through the shared loop; works the same in one process and under 2 ranks."""
    X = _data()
    ae, mu = _dec_model()
    with torch.no_grad():  # global target P, computed from this rank's rows
        q_local = student_t_assignment(ae.encode(dist.shard_rows(X)), mu)
        p = dist.gather_rows(dist.global_target_distribution(q_local))
    params = [*ae.encoder_layers.parameters(), mu]
    optimizer = torch.optim.SGD(params, lr=0.1)
    grads: list[torch.Tensor] = []
    optimizer.register_step_pre_hook(lambda opt, a, k: grads.extend(q.grad.clone() for q in params))
    ranks_means: list[torch.Tensor] = []

    def step(idx):
        loss = dec_loss(p[idx], student_t_assignment(ae.encode(X[idx]), mu), reduction="mean")
        ranks_means.append(loss.detach())
        return loss

    history = train(step, optimizer, N, epochs=1, batch_size=BATCH, device=torch.device("cpu"),
                    generator=make_generator(5, torch.device("cpu")), max_iter=1, show_progress=False)
    return {"loss": history["loss"][0], "grads": grads, "p": p, "rank_mean": ranks_means[0]}


def _reductions() -> dict:
    q, q_aug = _probs(1), _probs(2)
    part = dist.shard_range(N)
    # A skewed split: sort the samples by their cluster, so each shard holds mostly some clusters.
    skewed = q[q.argmax(1).argsort(stable=True)]
    p_local, pa_local = q[part].clone().requires_grad_(), q_aug[part].clone().requires_grad_()
    joint = dist.global_iic_joint(p_local, pa_local)
    (-(joint * joint.clamp_min(1e-8).log()).sum()).backward()
    z = _data()
    return {
        "rank": dist.rank(), "world": dist.world_size(), "part": (part.start, part.stop),
        "f": dist.global_cluster_frequencies(q[part]),
        "p_global": dist.gather_rows(dist.global_target_distribution(skewed[part])),
        "p_shard": dist.gather_rows(target_distribution(skewed[part])),
        "joint": joint.detach(),
        "joint_grads": (dist.gather_rows(p_local.grad), dist.gather_rows(pa_local.grad)),
        "counts": dist.global_centroid_counts(q[part].argmax(1), K),
        "z": dist.gather_embeddings(dist.shard_rows(z)),
        "on_rank0": dist.on_rank0(lambda: dist.rank() + 10),
    }


def _all_checks(folder: str) -> dict:
    """Everything the two-process tests look at, from one spawn (starting processes is the slow part)."""
    return {**_reductions(), "dec_step": _dec_one_step(), "dec_fit": _fit_dec(folder), "dcn": _fit_dcn(),
            "iic": _fit_iic(), "vade": _vade_checks()}


def _dcn() -> DCN:
    return DCN(K, dims=(D, 16, 4), pretrain_epochs=2, epochs=3, batch_size=16, n_init=2, cache=False,
               device="cpu", random_state=0)


def _fit_dcn() -> dict:
    model = _dcn().fit(_data(torch.float32))
    return {"labels": model.labels_, "centroids": model.cluster_centers_, "loss": model.history_["loss"]}


def _digits_images():
    from dclib import load_dataset

    return load_dataset("digits").X[:128]


def _fit_iic() -> dict:
    model = IIC(4, overcluster_k=6, n_heads=2, epochs=2, batch_size=37, lr=1e-3, channels=(4, 8, 8),
                device="cpu", random_state=0).fit(_digits_images())
    return {"labels": model.labels_, "best": model.best_subhead_, "loss": model.epoch_history_["loss"],
            "state": {k: v.clone() for k, v in model.net_.state_dict().items()}}


def _fit_dec(folder: str) -> dict:
    import os

    os.environ["DCLIB_CACHE"] = os.path.join(folder, f"cache{dist.rank()}")
    model = _dec()
    model.fit(_data(torch.float32))
    if dist.rank() == 0:
        model.save(os.path.join(folder, "dec.pt"))
    dist.barrier()
    return {"labels": model.labels_, "centroids": model.cluster_centers_, "n_iter": model.n_iter_,
            "loss": model.history_["loss"]}


def _dec() -> DEC:
    return DEC(K, dims=(D, 16, 4), pretrain="end-to-end", pretrain_epochs=3, batch_size=16, update_interval=4,
               max_iter=12, tol=0.0, n_init=2, device="cpu", random_state=0)


# ----------------------------------------------------------------------------- single process


def test_helpers_are_noops_in_one_process():
    assert not dist.is_distributed() and dist.rank() == 0 and dist.world_size() == 1
    assert not dist.init_distributed()  # no torchrun variables: nothing happens
    X, q = _data(), _probs(1)
    assert dist.shard_rows(X) is X and dist.gather_rows(X) is X and dist.shard_batch(X) is X
    assert dist.shard_weight(10, 10) is None and dist.shard_range(N) == slice(0, N)
    assert torch.equal(dist.global_target_distribution(q), target_distribution(q))
    assert torch.equal(dist.global_iic_joint(q, _probs(2)), iic_joint(q, _probs(2)))
    assert torch.equal(dist.global_cluster_frequencies(q), q.sum(0))


# ----------------------------------------------------------------------------- two processes


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def two_ranks(folder):
    return dist.launch_local(_all_checks, nprocs=2, args=(str(folder),))


def test_reductions_equal_single_process_values(two_ranks):
    q, q_aug = _probs(1), _probs(2)
    skewed = q[q.argmax(1).argsort(stable=True)]
    assert [r["rank"] for r in two_ranks] == [0, 1] and {r["world"] for r in two_ranks} == {2}
    assert [r["part"] for r in two_ranks] == [(0, N // 2), (N // 2, N)]
    p_full = q.clone().requires_grad_()
    pa_full = q_aug.clone().requires_grad_()
    joint = iic_joint(p_full, pa_full)
    (-(joint * joint.clamp_min(1e-8).log()).sum()).backward()
    for r in two_ranks:
        torch.testing.assert_close(r["f"], q.sum(0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(r["p_global"], target_distribution(skewed), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(r["joint"], joint.detach(), rtol=1e-12, atol=1e-12)
        # Each rank's loss is the global loss, so a rank's rows get W × their gradient; for shared
        # parameters the loop's average over ranks divides it back.
        torch.testing.assert_close(r["joint_grads"][0] / 2, p_full.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(r["joint_grads"][1] / 2, pa_full.grad, rtol=1e-10, atol=1e-12)
        assert torch.equal(r["counts"], torch.bincount(q.argmax(1), minlength=K).float())
        assert torch.equal(r["z"], _data())
        assert r["on_rank0"] == 10  # rank 0's value, on both ranks
    # The IIC loss of the reduced joint is the global loss, not the mean of per-shard losses
    # (on a skewed split each shard's marginals are unbalanced).
    order = q.argmax(1).argsort(stable=True)
    halves = (slice(0, N // 2), slice(N // 2, N))
    per_shard = np.mean([float(iic_loss(q[order][s], q_aug[order][s])) for s in halves])
    full = float(iic_loss(q, q_aug))
    assert abs(per_shard - full) > 0.1 * abs(full), (per_shard, full)


def test_per_shard_dec_target_differs_from_global(two_ranks):
    q = _probs(1)
    skewed = q[q.argmax(1).argsort(stable=True)]
    p_global = target_distribution(skewed)
    gap = (two_ranks[0]["p_shard"] - p_global).abs().max()
    assert gap > 0.05, gap  # shard-normalised f_j gives a visibly different target
    assert (two_ranks[0]["p_global"] - p_global).abs().max() < 1e-12


def test_one_dec_step_equals_single_process(two_ranks):
    single = _dec_one_step()
    ranks = [r["dec_step"] for r in two_ranks]
    for r in ranks:
        torch.testing.assert_close(r["p"], single["p"], rtol=1e-12, atol=1e-12)
        assert math.isclose(r["loss"], single["loss"], rel_tol=1e-10)
        for g_dist, g_single in zip(r["grads"], single["grads"], strict=True):
            torch.testing.assert_close(g_dist, g_single, rtol=1e-9, atol=1e-12)
    # The shards hold 19 and 18 samples: the plain average of the two per-rank means is not the
    # global mean, which is why the loop re-weights each rank's mean (dist.shard_weight).
    naive = float(sum(r["rank_mean"] for r in ranks)) / 2
    assert abs(naive - single["loss"]) > 1e-6 * abs(single["loss"])


def test_two_process_dec_fit_checkpoint_loads_in_one_process(two_ranks, folder):
    ranks = [r["dec_fit"] for r in two_ranks]
    assert np.array_equal(ranks[0]["labels"], ranks[1]["labels"])
    assert np.array_equal(ranks[0]["centroids"], ranks[1]["centroids"])  # the ranks never drift apart
    model = DEC.load(folder / "dec.pt", device="cpu")
    assert np.array_equal(model.predict(_data(torch.float32)), ranks[0]["labels"])
    # The same fit in one process (same batches, globally reduced statistics): same result up to
    # float rounding (k-means on the gathered embedding, gradient sums in another order).
    single = _dec().fit(_data(torch.float32))
    assert ranks[0]["n_iter"] == single.n_iter_ == 12
    assert np.array_equal(single.labels_, ranks[0]["labels"])
    np.testing.assert_allclose(ranks[0]["centroids"], single.cluster_centers_, atol=1e-4)
    np.testing.assert_allclose(ranks[0]["loss"][1:], single.history_["loss"][1:], rtol=1e-4)


def test_two_process_dcn_matches_single_process(two_ranks):
    ranks = [r["dcn"] for r in two_ranks]
    assert np.array_equal(ranks[0]["labels"], ranks[1]["labels"])
    single = _dcn().fit(_data(torch.float32))  # centroid counts and updates from the global batch
    assert np.array_equal(single.labels_, ranks[0]["labels"])
    np.testing.assert_allclose(ranks[0]["centroids"], single.cluster_centers_, atol=1e-4)
    np.testing.assert_allclose(ranks[0]["loss"], single.history_["loss"], rtol=1e-4)


def test_two_process_iic_ranks_stay_in_sync(two_ranks):
    # Batch norm uses each shard's statistics (no SyncBatchNorm), so IIC is not bit-for-bit the
    # single-process fit; its loss is the global −I (test above), and the ranks must agree.
    a, b = (r["iic"] for r in two_ranks)
    assert a["best"] == b["best"] and np.array_equal(a["labels"], b["labels"])
    for key, value in a["state"].items():
        assert torch.equal(value, b["state"][key]), key
    assert len(a["loss"]) == 4 and all(math.isfinite(v) for v in a["loss"])


# ----------------------------------------------------------------------------- VaDE: the mixture and one step


def _gmm_start() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Embeddings sorted by cluster (so each shard holds mostly one or two clusters) and an EM start."""
    z = _data()[(torch.arange(N) % K).argsort(stable=True)]
    g = torch.Generator().manual_seed(3)
    weights = torch.full((K,), 1.0 / K, dtype=torch.float64)
    means = z[torch.randperm(N, generator=g)[:K]].clone()
    return z, weights, means, z.var(0).expand(K, D).clone()


def _log_resp(z, weights, means, variances) -> torch.Tensor:
    from dclib.losses import gaussian_log_density

    return torch.log_softmax(weights.log() + gaussian_log_density(z, means, variances.log()), dim=1)


def _vade(epochs: int = 2):
    from dclib.methods import VaDE

    return VaDE(K, dims=(D, 16, 4), pretrain=None, epochs=epochs, batch_size=BATCH, n_init=2, device="cpu",
                random_state=0)


def _vade_data() -> torch.Tensor:
    return torch.sigmoid(_data(torch.float32))  # VaDE's Bernoulli likelihood wants [0, 1]


def _fit_vade() -> dict:
    """A VaDE fit (no pretraining: every Adam step is VaDE's), recording each step's gradients."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    grads: list[list[torch.Tensor]] = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, a, k: grads.append([p.grad.clone() for g in opt.param_groups for p in g["params"]]))
    try:
        model = _vade().fit(_vade_data())
    finally:
        handle.remove()
    return {"grads": grads, "loss": model.history_["loss"], "elbo_terms": model.history_["reconstruction"],
            "labels": model.labels_, "initial": model.initial_labels_, "means": model.means_.detach().clone(),
            "pi": model.weights_.detach().clone()}


def _vade_checks() -> dict:
    z, weights, means, variances = _gmm_start()
    part = dist.shard_range(N)
    log_resp = _log_resp(z, weights, means, variances)
    stats = dist.global_gmm_statistics(z[part], log_resp[part])
    em = dist.distributed_gmm_em(z[part], weights, means, variances, n_iter=3)
    local_em = dist.gmm_m_step(*dist.gmm_statistics(z[part], log_resp[part]))  # no reduction: one shard's M-step
    return {"stats": stats, "em": em, "local_m_step": local_em, "vade": _fit_vade()}


@pytest.fixture(scope="module")
def vade_ranks(two_ranks):
    return [r["vade"] for r in two_ranks]  # computed in the same spawn (starting processes is the slow part)


def test_gmm_m_step_matches_brute_force_and_scikit_learn():
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    z, weights, means, variances = _gmm_start()
    gamma = _log_resp(z, weights, means, variances).exp().numpy()
    zn = z.numpy()
    n_k, s1, s2 = dist.gmm_statistics(z, torch.from_numpy(gamma).log())
    for k in range(K):  # brute force: loops over samples
        assert math.isclose(float(n_k[k]), sum(gamma[i, k] for i in range(N)), rel_tol=1e-12)
        np.testing.assert_allclose(s1[k].numpy(), sum(gamma[i, k] * zn[i] for i in range(N)), rtol=1e-12)
        np.testing.assert_allclose(s2[k].numpy(), sum(gamma[i, k] * zn[i] ** 2 for i in range(N)), rtol=1e-12)
    # Three EM steps from the same start equal scikit-learn's (max_iter=3, tol=0: exactly 3 steps).
    w, m, v, ll = dist.distributed_gmm_em(z, weights, means, variances, n_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm = GaussianMixture(K, covariance_type="diag", max_iter=3, tol=0.0, reg_covar=1e-4, weights_init=weights,
                              means_init=means, precisions_init=1 / variances, random_state=0).fit(zn)
    np.testing.assert_allclose(w.numpy(), gmm.weights_, rtol=1e-9)
    np.testing.assert_allclose(m.numpy(), gmm.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(v.numpy(), gmm.covariances_, rtol=1e-9)
    assert math.isclose(ll, gmm.lower_bound_, rel_tol=1e-9)


def test_reduced_gmm_statistics_equal_single_process(vade_ranks):
    z, weights, means, variances = _gmm_start()
    single = dist.gmm_statistics(z, _log_resp(z, weights, means, variances))
    em = dist.distributed_gmm_em(z, weights, means, variances, n_iter=3)
    for r in vade_ranks:
        for got, want in zip(r["stats"], single, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        for got, want in zip(r["em"][:3], em[:3], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        assert math.isclose(r["em"][3], em[3], rel_tol=1e-12)


def test_per_shard_gmm_differs_from_global(vade_ranks):
    z, weights, means, variances = _gmm_start()
    pi, mu, var = dist.gmm_m_step(*dist.gmm_statistics(z, _log_resp(z, weights, means, variances)))
    for r in vade_ranks:  # each shard holds mostly one or two clusters: its own mixture is another one
        local_pi, local_mu, local_var = r["local_m_step"]
        assert (local_pi - pi).abs().max() > 0.1, (local_pi, pi)
        assert not torch.allclose(local_var, var, rtol=0.05)
    # ... and the two shards' mixtures differ from each other: the ranks would not even agree.
    assert (vade_ranks[0]["local_m_step"][0] - vade_ranks[1]["local_m_step"][0]).abs().max() > 0.2


def test_vade_two_process_steps_equal_single_process(vade_ranks):
    single = _fit_vade()
    a, b = (r["vade"] for r in vade_ranks)
    assert np.array_equal(a["initial"], single["initial"]) and np.array_equal(b["initial"], single["initial"])
    assert len(a["grads"]) == len(single["grads"]) == 4  # 2 epochs × (37 + 27 samples)
    for step_d, step_s in zip(a["grads"], single["grads"], strict=True):  # averaged gradients, every step
        for g_d, g_s in zip(step_d, step_s, strict=True):
            torch.testing.assert_close(g_d, g_s, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a["loss"], single["loss"], rtol=1e-5)
    np.testing.assert_allclose(a["elbo_terms"], single["elbo_terms"], rtol=1e-5)
    assert torch.equal(a["means"], b["means"]) and torch.equal(a["pi"], b["pi"])  # the ranks stay in sync
    torch.testing.assert_close(a["means"], single["means"], rtol=1e-4, atol=1e-5)
    assert np.array_equal(a["labels"], single["labels"]) and np.array_equal(b["labels"], single["labels"])
