"""Data-parallel deep clustering with ``torch.distributed``: process group, shards, global statistics.

Launch any fit with ``torchrun --nproc-per-node N -m dclib fit --method dec --data mnist5k``.
Every rank holds the whole (small) dataset on its device, computes only on its own shard, and
the statistics a method needs over *all* samples are reduced across ranks. Every helper is a
no-op in a single process, so library code calls them unconditionally and a one-process run
is bit-identical to one without them.

Gradients: the shared loop (``dclib.train.train``) all-reduces the gradients explicitly after
``backward()`` (``average_gradients``) instead of wrapping a module in
``DistributedDataParallel``. Why: the methods' losses call submodules (``encode``, ``decode``)
and bare ``nn.Parameter``\\ s (DEC's centroids) outside one ``forward()``, and DDP synchronises
only the gradients of a module whose own ``forward()`` ran. Averaging one flattened buffer after
``backward()`` gives the same update as DDP; what it gives up is DDP's overlap of communication
with the backward pass, which pays off for large networks on many GPUs, not for these models.

Lesson: ``notebooks/12_scaling.ipynb``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

import torch
import torch.distributed as dist

from .losses import gaussian_log_density, iic_joint, iic_loss, target_distribution

__all__ = [
    "init_distributed",
    "cleanup",
    "launch_local",
    "free_port",
    "is_distributed",
    "rank",
    "world_size",
    "local_rank",
    "barrier",
    "shard_range",
    "shard_rows",
    "shard_batch",
    "shard_weight",
    "gather_rows",
    "gather_embeddings",
    "on_rank0",
    "all_sum",
    "all_mean",
    "broadcast_parameters",
    "sync_generator",
    "batch_generator",
    "average_gradients",
    "global_cluster_frequencies",
    "global_target_distribution",
    "global_iic_joint",
    "global_iic_loss",
    "broadcast_buffers",
    "global_centroid_counts",
    "shard_normal",
    "gmm_statistics",
    "global_gmm_statistics",
    "gmm_m_step",
    "distributed_gmm_em",
]

T = TypeVar("T")


# ----------------------------------------------------------------------------- process group


def init_distributed(backend: str | None = None) -> bool:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR/PORT``).

    ``gloo`` on the CPU, ``nccl`` when CUDA is present (each process then uses GPU ``LOCAL_RANK``);
    ``DCLIB_DIST_BACKEND`` or ``backend`` overrides. Returns whether this run is distributed;
    without torchrun's variables (or with ``WORLD_SIZE=1``) it does nothing and returns False.
    """
    if dist.is_available() and dist.is_initialized():
        return is_distributed()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_available():  # pragma: no cover - torch built without distributed
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed.")
    backend = backend or os.environ.get("DCLIB_DIST_BACKEND") or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank())  # "cuda" (device="auto") now means this rank's GPU
    dist.init_process_group(backend=backend, init_method="env://")
    return True


def free_port() -> int:
    """A TCP port that was free a moment ago (bind to port 0 and let the OS choose)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _local_worker(local: int, fn: Callable, nprocs: int, port: int, folder: str, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(local),
                      LOCAL_RANK=str(local), WORLD_SIZE=str(nprocs), DCLIB_DIST_BACKEND="gloo")
    torch.set_num_threads(1)
    init_distributed()
    try:
        torch.save(fn(*args), os.path.join(folder, f"rank{local}.pt"))
    finally:
        cleanup()


def launch_local(fn: Callable[..., T], nprocs: int = 2, args: tuple = ()) -> list[T]:
    """Run ``fn(*args)`` in ``nprocs`` CPU processes joined by ``gloo``; return each rank's result.

    What ``torchrun --nproc-per-node N`` does, from Python: for tests and the scaling lesson.
    ``fn`` must be importable (defined in a module, not in a notebook cell) and its result
    picklable; each process uses one thread.
    """
    import tempfile

    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(_local_worker, args=(fn, nprocs, free_port(), folder, args), nprocs=nprocs, join=True)
        return [torch.load(os.path.join(folder, f"rank{r}.pt"), weights_only=False) for r in range(nprocs)]


def cleanup() -> None:
    """Leave the process group (call once at the end of a distributed script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's index (0 in a single process)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 in a single process)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's index on its machine (torchrun's ``LOCAL_RANK``): which GPU it drives."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def barrier() -> None:
    if is_distributed():
        dist.barrier()


# ----------------------------------------------------------------------------- shards


def shard_range(n: int) -> slice:
    """The contiguous rows ``[start, stop)`` of ``n`` this rank owns (sizes differ by at most one)."""
    size, extra = divmod(n, world_size())
    r = rank()
    start = r * size + min(r, extra)
    return slice(start, start + size + (r < extra))


def shard_rows(X: torch.Tensor) -> torch.Tensor:
    """This rank's rows of ``X`` (all of ``X`` in one process): full-data passes split this way."""
    return X[shard_range(len(X))] if is_distributed() else X


def shard_batch(idx: torch.Tensor) -> torch.Tensor:
    """This rank's part of a global mini-batch of indices (the whole batch in one process).

    Every rank draws the same permutation (``sync_generator``), so the global batches are those
    of a single-process run and the ranks split each one: the same algorithm, W times less work.
    """
    return torch.tensor_split(idx, world_size())[rank()] if is_distributed() else idx


def shard_weight(n_local: int, n_global: int) -> float | None:
    """Factor that turns this rank's *mean* loss into its share of the global batch mean.

    Averaging per-rank means over W ranks equals the global mean only if the shards are equal;
    weighting rank r's mean by ``n_r · W / n`` makes the average exactly Σ_r n_r·mean_r / n for
    any split (e.g. a last, odd-sized batch). ``None`` in one process (nothing to re-weight).
    """
    return n_local * world_size() / n_global if is_distributed() else None


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows, in rank order (uneven sizes allowed); ``t`` in one process.

    With ``shard_rows`` this rebuilds a full-data result (labels, targets) on every rank.
    """
    if not is_distributed():
        return t
    n = torch.tensor([len(t)], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    longest = int(max(s.item() for s in sizes))
    padded = t.new_zeros((longest, *t.shape[1:]))
    padded[: len(t)] = t
    parts = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes, strict=True)])


def gather_embeddings(z_local: torch.Tensor) -> torch.Tensor:
    """The embedding of *all* samples on every rank, for the k-means / GMM initialisation.

    k-means on one shard's embedding would place the centroids by a sample of the data (and
    each rank would get different centroids); fitting on the gathered embedding gives the
    single-process initialisation. Run the fit once with ``on_rank0`` and broadcast it.
    """
    return gather_rows(z_local)


def on_rank0(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and give every rank its result (e.g. the k-means fit).

    One fit instead of W identical ones, and no risk of ranks disagreeing through
    thread-dependent floating point in the fit.
    """
    if not is_distributed():
        return fn()
    box = [fn() if rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (a new tensor; no gradient flows through it)."""
    if not is_distributed():
        return t
    out = t.detach().clone()
    dist.all_reduce(out)
    return out


def all_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over ranks, e.g. a logged loss; ``t`` itself in one process."""
    return all_sum(t) / world_size() if is_distributed() else t


# ----------------------------------------------------------------------------- gradients


def broadcast_parameters(params: Iterable[torch.Tensor]) -> None:
    """Copy rank 0's parameters to every rank (as DDP does at construction)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for p in params:
            dist.broadcast(p.data, src=0)


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every rank, as DDP does.

    In training mode batch norm normalises with this rank's shard statistics (as DDP without
    ``SyncBatchNorm``), so the running averages differ across ranks until they are broadcast.
    """
    if is_distributed():
        for b in module.buffers():
            dist.broadcast(b, src=0)


def sync_generator(generator: torch.Generator | None) -> None:
    """Give every rank rank 0's generator state, so all draw the same batch permutation.

    Without it (``random_state=None``) the ranks' "global" batches would differ and their shards
    would overlap instead of partitioning each batch.
    """
    if generator is None or not is_distributed():
        return
    box = [generator.get_state() if rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    generator.set_state(box[0])


def batch_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    """The generator that draws the global batches, identical on every rank; re-seeds ``generator``.

    Returns a copy of rank 0's ``generator``, so every rank draws the batches a single process
    would. The caller's ``generator`` goes on serving the step's own draws (IIC's augmentations),
    which depend on the shard size: they must not steer the permutations, and they are re-seeded
    per rank (rank 0 keeps its stream) so the ranks do not draw the same augmentations.
    """
    if generator is None:
        generator = torch.Generator(device=device)
        generator.manual_seed(int(on_rank0(lambda: int(torch.randint(2**62, ())))))
        return generator
    sync_generator(generator)
    copy = torch.Generator(device=generator.device)
    copy.set_state(generator.get_state())
    if rank():
        generator.manual_seed(generator.initial_seed() + 7919 * rank())
    return copy


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Replace each gradient by its mean over ranks, with one all-reduce of a flattened buffer.

    Every rank must have gradients for the same parameters (the same code on non-empty shards).
    """
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


# ----------------------------------------------------------------------------- global statistics


def global_cluster_frequencies(q: torch.Tensor) -> torch.Tensor:
    """DEC's soft cluster sizes f_j = Σ_i q_ij over *all* samples, from this rank's rows of q.

    Why global: f_j normalises the target p_ij ∝ q_ij²/f_j. A shard's f_j counts only its own
    samples; on a skewed shard (say mostly one digit) it would shrink that cluster's targets on
    this rank only, so the ranks would train towards different, inconsistent P's.
    """
    return all_sum(q.sum(dim=0))


def global_target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's target P for this rank's rows of q, normalised by the *global* frequencies f_j.

    ``target_distribution(q)`` divides by the shard's f_j^shard; multiplying column j by
    f_j^shard / f_j^global and renormalising each row turns it into q_ij²/f_j^global normalised,
    exactly the single-process target's rows (a row's normalisation cancels any per-row factor).
    Why not per shard: see ``global_cluster_frequencies``; ``tests/test_distributed.py`` shows
    the per-shard target differs on a skewed split. One all-reduce of K numbers.
    """
    if not is_distributed():
        return target_distribution(q)
    local = q.sum(dim=0)
    weight = target_distribution(q) * (local / all_sum(local))
    return weight / weight.sum(dim=1, keepdim=True)


def global_iic_joint(p: torch.Tensor, p_aug: torch.Tensor) -> torch.Tensor:
    """IIC's joint P = 1/n Σ_i Φ(x_i)Φ(g x_i)ᵀ (symmetrised) over the *global* batch, with gradients.

    Each rank sums its outer products (``iic_joint`` × its batch size) and one all-reduce adds
    them up, together with the batch sizes. Why: the loss −I(P) is not a mean over samples, so
    the average of the per-rank losses −I(P_r) is not −I(P): each P_r is a noisier estimate from
    n/W samples, and the mutual information of the average is not the average of the mutual
    informations. The all-reduce is differentiable (its backward sums the incoming gradients),
    so every rank gets W × its share of ∂(−I(P))/∂θ and ``average_gradients`` divides by W:
    train such a step with ``sample_mean=False``.
    """
    if not is_distributed():
        return iic_joint(p, p_aug)
    k = p.shape[1]
    local = iic_joint(p, p_aug) * len(p) if len(p) else p.new_zeros(k, k)
    packed = torch.cat([local.reshape(-1), local.new_tensor([float(len(p))])])
    total = _AllSum.apply(packed)
    return total[:-1].reshape(k, k) / total[-1]


def global_iic_loss(p: torch.Tensor, p_aug: torch.Tensor, eps: float = 1e-8, lamb: float = 1.0) -> torch.Tensor:
    """``losses.iic_loss`` of the *global* joint (``global_iic_joint``): −I over the global batch.

    The same formula as ``iic_loss``, applied to the reduced joint; in one process it is
    ``iic_loss`` itself. Train with ``sample_mean=False`` (the loss is already global).
    """
    if not is_distributed():
        return iic_loss(p, p_aug, eps=eps, lamb=lamb)
    joint = global_iic_joint(p, p_aug).clamp_min(eps)
    p_row = joint.sum(dim=1, keepdim=True)
    p_col = joint.sum(dim=0, keepdim=True)
    return -(joint * (joint.log() - lamb * p_row.log() - lamb * p_col.log())).sum()


class _AllSum(torch.autograd.Function):
    """Differentiable sum over ranks: y = Σ_r x_r on every rank, so ∂L/∂x_r = Σ_ranks ∂L_rank/∂y."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.detach().clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


def global_centroid_counts(assignments: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """DCN's number of points per cluster over all ranks' assignments (float, for running means).

    Why: DCN's centroid μ_k is the running mean of every point ever assigned to it, with step
    1/c_k. With per-rank counts each rank would move its own copy of μ_k by a different step
    and the centroids would drift apart across ranks.
    """
    counts = torch.bincount(assignments, minlength=n_clusters).to(torch.float32)
    return all_sum(counts)


def shard_normal(n_global: int, d: int, like: torch.Tensor) -> torch.Tensor:
    """This rank's rows of an (n_global, d) standard normal draw (VaDE's reparameterisation noise).

    Every rank draws the noise of the *whole* global batch from the global RNG and keeps its rows
    (``shard_range``): the ranks' RNG streams stay in step and the noise each sample gets is the
    one it gets in a single process, so a 2-process step equals the 1-process step. Drawing only
    the shard's rows would give rank 1's samples the noise of rank 0's (same seed, same stream).
    In one process it is ``torch.randn`` of the batch, the draw ``randn_like`` makes.
    """
    eps = torch.randn(n_global, d, dtype=like.dtype, device=like.device)
    return eps[shard_range(n_global)] if is_distributed() else eps


# ----------------------------------------------------------------------------- VaDE's mixture


def gmm_statistics(z: torch.Tensor, log_resp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sufficient statistics of a diagonal GMM's M-step over these rows: N_k, Σ_i γ_ik z_i, Σ_i γ_ik z_i².

    Everything the M-step needs is a *sum over samples*, which is what makes EM data parallel:
    the statistics of the union of shards are the sums of the shards' statistics.
    """
    gamma = log_resp.exp()
    return gamma.sum(0), gamma.T @ z, gamma.T @ z.square()


def global_gmm_statistics(z: torch.Tensor, log_resp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``gmm_statistics`` summed over all ranks (one all-reduce of K(2d+1) numbers).

    Why global: μ_k = Σ_i γ_ik z_i / N_k is a ratio of sums. The average of per-shard means
    (Σ_r μ_k^r / W) weights every shard equally, however few points of cluster k it holds; on a
    skewed split (a shard with few "1"s) it is not the mean of the data. Summing the numerators
    and denominators first, Σ_r S_k^r / Σ_r N_k^r, gives exactly the single-process M-step.
    """
    n_k, s1, s2 = gmm_statistics(z, log_resp)
    if not is_distributed():
        return n_k, s1, s2
    k, d = s1.shape
    total = all_sum(torch.cat([n_k, s1.reshape(-1), s2.reshape(-1)]))
    return total[:k], total[k : k + k * d].reshape(k, d), total[k + k * d :].reshape(k, d)


def gmm_m_step(
    n_k: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, reg_covar: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """π, μ, σ² of a diagonal GMM from its sufficient statistics (scikit-learn's M-step).

    π_k = N_k / n, μ_k = S1_k / N_k, σ²_k = S2_k / N_k − μ_k² + reg_covar (the variance floor
    ``GaussianMixture(reg_covar=...)`` adds). Use float64: the variance is a difference of two
    moments. Derived in ``notebooks/12_scaling.ipynb``.
    """
    n_k = n_k + 10 * torch.finfo(n_k.dtype).eps  # as scikit-learn: an empty component divides by ~0, not 0
    means = s1 / n_k[:, None]
    variances = (s2 / n_k[:, None] - means.square()).clamp_min(0) + reg_covar
    return n_k / n_k.sum(), means, variances


@torch.no_grad()
def distributed_gmm_em(
    z: torch.Tensor,
    weights: torch.Tensor,
    means: torch.Tensor,
    variances: torch.Tensor,
    n_iter: int = 1,
    reg_covar: float = 1e-4,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """``n_iter`` EM steps of a diagonal GMM on all ranks' rows ``z`` without gathering them.

    E-step on this rank's rows (γ in log space), sufficient statistics all-reduced
    (``global_gmm_statistics``), the same M-step on every rank: the single-process EM on the
    union of the shards, for O(K·d) communication per step instead of gathering n·d numbers.
    VaDE's initial mixture must be global: fitted per shard, each rank would get the mixture of
    its own sample (skewed weights π, components in another order) and the parameter broadcast at
    the start of training would silently keep rank 0's. Returns π, μ, σ² and the global mean
    log-likelihood per sample at the parameters the last E-step used.
    """
    mean_ll = float("nan")
    for _ in range(n_iter):
        log_joint = torch.log(weights)[None, :] + gaussian_log_density(z, means, variances.log())
        log_norm = torch.logsumexp(log_joint, dim=1, keepdim=True)
        n_k, s1, s2 = global_gmm_statistics(z, log_joint - log_norm)
        ll = all_sum(torch.stack([log_norm.sum(), log_norm.new_tensor(float(len(z)))]))
        mean_ll = float(ll[0] / ll[1])
        weights, means, variances = gmm_m_step(n_k, s1, s2, reg_covar)
    return weights, means, variances, mean_ll
