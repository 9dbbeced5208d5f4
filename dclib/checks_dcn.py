"""Auto-checks for lab 06 (DCN): the k-means term of the loss and the running-mean centroid step.

Same contract as ``dclib.checks``: each check runs the learner's function on known cases,
prints ✓ or ✗ with a hint, and returns True/False. Lab: ``solutions/lab06_dcn.ipynb``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .checks import _close, _expect, _run

__all__ = ["check_kmeans_loss", "check_update_centroids"]


def _dcn_problem(seed: int = 0, n: int = 12, k: int = 3, d: int = 4, dtype=torch.float64):
    """Random embeddings, centroids and assignments; every cluster but the last gets points."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=dtype)
    centers = 2 * torch.randn(k, d, generator=g, dtype=dtype)
    assignments = torch.randint(0, k - 1, (n,), generator=g)
    assignments[: k - 1] = torch.arange(k - 1)  # clusters 0 .. k-2 are used, cluster k-1 is empty
    return z, centers, assignments


def _snapshot(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.detach().clone() for t in tensors]


def _unchanged(before: list[torch.Tensor], after: tuple[torch.Tensor, ...]) -> bool:
    return all(torch.equal(b, a.detach()) for b, a in zip(before, after, strict=True))


# ----------------------------------------------------------------------------- k-means term


def check_kmeans_loss(fn: Callable) -> bool:
    """``fn(z, centers, assignments) -> loss``: the mean over the batch of ½‖z_i − μ_{s_i}‖².

    ``z`` is (n, d), ``centers`` (K, d), ``assignments`` (n,) cluster indices; the result is a
    scalar tensor through which gradients reach ``z`` (as ``dclib.losses.kmeans_loss``).
    """
    from .losses import kmeans_loss

    def as_scalar(out) -> torch.Tensor:
        _expect(isinstance(out, torch.Tensor), f"return a torch tensor (not {type(out).__name__}) so that "
                "gradients can flow back to the network — no .item(), no NumPy.")
        _expect(out.dim() == 0, f"return one number for the batch (a 0-d tensor), got shape {tuple(out.shape)} — "
                "sum over the embedding coordinates, then average over the samples.")
        return out

    def by_hand():
        # Four 2-d points, two centroids; the last point is assigned to the centroid that is NOT its nearest.
        z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.2, 0.0]], dtype=torch.float64)
        centers = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
        s = torch.tensor([0, 1, 1, 1])
        # per sample: 0, ½(1 + 1) = 1, ½(1 + 4) = 2.5, ½(0.64 + 1) = 0.82  ->  mean 4.32 / 4 = 1.08
        got = float(as_scalar(fn(z, centers, s)))
        wrong = {
            4.32: "you summed over the batch; average over the samples (the library's reduction='mean', so that "
                  "λ does not depend on the batch size).",
            2.16: "the factor ½ is missing: the term is ½‖z_i − μ_{s_i}‖².",
            0.54: "you averaged over the embedding coordinates too; sum over them (a squared Euclidean distance), "
                  "average over the samples only.",
            (0 + 0.5 * 2**0.5 + 0.5 * 5**0.5 + 0.5 * 1.64**0.5) / 4: "the distance must be squared: "
                  "½ Σ_d (z_id − μ_{s_i,d})², no square root.",
            (0 + 1 + 2.5 + 0.02) / 4: "you used the nearest centroid; use the given assignments s_i — in DCN's "
                  "network step they are held fixed (the last point here is assigned to its farther centroid).",
        }
        for value, hint in wrong.items():
            _expect(abs(got - value) > 1e-6, f"got {got:.4f} instead of 1.08 — {hint}")
        _expect(abs(got - 1.08) < 1e-9, f"got {got:.6f} on a 4-point example, expected 1.08 = (0 + 1 + 2.5 + 0.82) / 4 "
                "— per sample ½ Σ_d (z_id − μ_{s_i,d})² with μ_{s_i} = centers[s_i], then the mean over samples.")

    def matches_reference():
        for seed, (n, k, d) in enumerate([(12, 3, 4), (7, 5, 2), (30, 4, 10)]):
            z, centers, s = _dcn_problem(seed, n, k, d)
            ref = kmeans_loss(z, centers, s)
            got = as_scalar(fn(*_snapshot(z, centers, s)))
            _expect(_close(got, ref), f"got {float(got):.6f}, expected {float(ref):.6f} (n={n}, K={k}, d={d}).")
        z, centers, s = _dcn_problem(5, dtype=torch.float32)
        ref = kmeans_loss(z, centers, s)
        _expect(_close(as_scalar(fn(*_snapshot(z, centers, s))), ref, tol=1e-5),
                "wrong value in float32 — use torch operations only, no hard-coded dtype.")

    def gradient_reaches_z():
        z, centers, s = _dcn_problem(11)
        z = z.requires_grad_(True)
        loss = as_scalar(fn(z, *_snapshot(centers, s)))
        _expect(loss.requires_grad, "no gradient reaches z: do not detach z or convert it to NumPy inside the loss.")
        (grad,) = torch.autograd.grad(loss, z)
        _expect(_close(grad, (z - centers[s]).detach() / len(z)),
                "the gradient with respect to z_i must be (z_i − μ_{s_i}) / n: each point is pulled straight "
                "towards its own centroid.")

    def inputs_untouched():
        z, centers, s = _dcn_problem(12)
        before = _snapshot(z, centers, s)
        fn(z, centers, s)
        _expect(_unchanged(before, (z, centers, s)), "your function modified z, centers or assignments in place "
                "(e.g. z -= ... or .sub_()); compute a new tensor instead.")

    return _run("check_kmeans_loss", [("a 4-point example by hand", by_hand), ("random problems", matches_reference),
                                      ("inputs left unchanged", inputs_untouched),
                                      ("the gradient with respect to z", gradient_reaches_z)])


# ----------------------------------------------------------------------------- centroid step


def _sequential_update(centers, counts, z, assignments):
    """The paper's per-point step: c_k ← c_k + 1, then μ_k ← μ_k − (1/c_k)(μ_k − z_i)."""
    centers, counts = centers.clone(), counts.clone()
    for z_i, k in zip(z, assignments.tolist(), strict=True):
        counts[k] += 1
        centers[k] = centers[k] - (centers[k] - z_i) / counts[k]
    return centers, counts


def check_update_centroids(fn: Callable) -> bool:
    """``fn(centers, counts, z, assignments) -> (new_centers, new_counts)``: DCN's running-mean step for a batch.

    For each cluster k with m_k points in the batch: c_k' = c_k + m_k and
    μ_k' = (c_k μ_k + Σ_{i: s_i = k} z_i) / c_k' — the paper's per-point step
    μ_k ← μ_k − (1/c_k)(μ_k − z_i) (after c_k ← c_k + 1) applied to every point. Clusters without
    points keep their centroid and count; the inputs are not modified.
    """
    from .methods.dcn import update_centroids

    def as_pair(out) -> tuple[torch.Tensor, torch.Tensor]:
        _expect(isinstance(out, tuple) and len(out) == 2,
                f"return a tuple (new_centers, new_counts), got {type(out).__name__}.")
        new_centers, new_counts = out
        _expect(isinstance(new_centers, torch.Tensor) and isinstance(new_counts, torch.Tensor),
                "both returned values must be torch tensors.")
        return new_centers, new_counts

    def one_point_per_cluster():
        centers = torch.tensor([[0.0, 0.0], [10.0, 10.0], [-5.0, 5.0]], dtype=torch.float64)
        counts = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64)
        z = torch.tensor([[4.0, 0.0], [2.0, 2.0]], dtype=torch.float64)
        new_centers, new_counts = as_pair(fn(*_snapshot(centers, counts, z), torch.tensor([0, 1])))
        _expect(tuple(new_centers.shape) == (3, 2) and tuple(new_counts.shape) == (3,),
                f"shapes must be (K, d) = (3, 2) and (K,) = (3,), got {tuple(new_centers.shape)} and "
                f"{tuple(new_counts.shape)}.")
        _expect(_close(new_counts, [2.0, 4.0, 2.0]), f"counts must become [2, 4, 2] (one point each for clusters 0 "
                f"and 1, none for cluster 2), got {new_counts.tolist()}.")
        expected = np.array([[2.0, 0.0], [8.0, 8.0], [-5.0, 5.0]])
        if _close(new_centers[:2], [[4.0, 0.0], [10 - 8 / 3, 10 - 8 / 3]]):
            _expect(False, "the step used the count from BEFORE the increment: first c_k ← c_k + 1, then "
                    "μ_k ← μ_k − (1/c_k)(μ_k − z). With the old count a cluster of one point jumps onto the new "
                    "point and forgets the old one.")
        _expect(not _close(new_centers[1], [6.0, 6.0]),
                "cluster 1 moved halfway to the point: a constant step size is an exponential moving average, not "
                "a mean. The step is 1/c_k, with c_k the count after the increment.")
        _expect(not _close(new_centers[:2], [[4.0, 0.0], [2.0, 2.0]]),
                "the new centroid is just the batch mean: the old centroid stands for c_k earlier points and keeps "
                "that weight, μ_k' = (c_k μ_k + Σ z_i) / (c_k + m_k).")
        _expect(_close(new_centers[2], expected[2]), "cluster 2 got no point: its centroid must stay unchanged, got "
                f"{new_centers[2].tolist()}.")
        _expect(_close(new_centers, expected), f"expected centroids {expected.tolist()}, got "
                f"{np.round(new_centers.tolist(), 4).tolist()} — μ_k' = (c_k μ_k + Σ_(i: s_i=k) z_i) / c_k'.")

    def several_points_in_one_cluster():
        # Cluster 0 (count 2, at the origin) receives two points, cluster 1 (count 1) receives three.
        centers = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
        counts = torch.tensor([2.0, 1.0], dtype=torch.float64)
        z = torch.tensor([[3.0, 0.0], [1.0, 3.0], [6.0, 0.0], [1.0, 5.0], [1.0, 9.0]], dtype=torch.float64)
        s = torch.tensor([0, 1, 0, 1, 1])
        new_centers, new_counts = as_pair(fn(*_snapshot(centers, counts, z, s)))
        _expect(_close(new_counts, [4.0, 4.0]),
                f"counts must grow by the number of points of each cluster in the batch: [2+2, 1+3] = [4, 4], got "
                f"{new_counts.tolist()}. `counts[s] += 1` adds 1 only once per distinct index when s repeats one — "
                "use index_add / torch.bincount(s, minlength=K).")
        expected = torch.tensor([[(0 + 3 + 6) / 4, 0.0], [(1 + 1 + 1 + 1) / 4, (1 + 3 + 5 + 9) / 4]],
                                dtype=torch.float64)
        for i, k in enumerate(s.tolist()):
            for count in (counts[k] + 1, new_counts[k]):
                one_step = centers[k] + (z[i] - centers[k]) / count
                _expect(not _close(new_centers[k], one_step),
                        f"cluster {k} moved towards only one of its points in the batch: with repeated indices, "
                        "`centers[s] = ...` keeps one write per cluster. Add up every point of the cluster "
                        "(index_add) before dividing.")
        _expect(_close(new_centers, expected), f"expected {expected.tolist()} (each centroid the mean of its old "
                f"c_k copies of μ_k and the new points), got {np.round(new_centers.tolist(), 4).tolist()}.")

    def matches_reference():
        for seed, (n, k, d) in enumerate([(12, 3, 4), (40, 6, 2), (9, 4, 10)]):
            z, centers, s = _dcn_problem(20 + seed, n, k, d)
            counts = torch.arange(1, k + 1, dtype=torch.float64) * 3
            ref = update_centroids(centers, counts, z, s)
            seq = _sequential_update(centers, counts, z, s)
            got = as_pair(fn(*_snapshot(centers, counts, z, s)))
            _expect(_close(got[1], ref[1]), f"wrong counts (n={n}, K={k}): got {got[1].tolist()}, expected "
                    f"{ref[1].tolist()}.")
            _expect(_close(got[0], ref[0]) and _close(ref[0], seq[0]),
                    f"the centroids differ from the paper's point-by-point update (n={n}, K={k}, d={d}).")
        z, centers, s = _dcn_problem(30, dtype=torch.float32)
        counts = torch.full((3,), 5.0)
        ref = update_centroids(centers, counts, z, s)
        got = as_pair(fn(*_snapshot(centers, counts, z, s)))
        _expect(_close(got[0], ref[0], tol=1e-5) and _close(got[1], ref[1], tol=1e-5),
                "wrong values in float32 — do not hard-code the dtype (use zeros_like / the inputs' dtype).")

    def running_mean_over_batches():
        # Counts start at the initial cluster sizes: after several batches every centroid is the exact mean
        # of all the points it ever received, whatever the batches.
        g = torch.Generator().manual_seed(40)
        points = torch.randn(8, 3, generator=g, dtype=torch.float64)
        labels = torch.tensor([0, 1, 1, 0, 2, 1, 1, 2])
        centers = torch.stack([points[labels == k].mean(0) for k in range(3)])
        counts = torch.bincount(labels, minlength=3).double()
        for _ in range(4):
            z = torch.randn(5, 3, generator=g, dtype=torch.float64)
            s = torch.randint(0, 3, (5,), generator=g)
            centers, counts = as_pair(fn(*_snapshot(centers, counts, z, s)))
            points, labels = torch.cat([points, z]), torch.cat([labels, s])
        brute = torch.stack([points[labels == k].mean(0) for k in range(3)])
        _expect(_close(centers, brute), "after four batches the centroids are not the means of all the points "
                "assigned so far (brute force).")

    def inputs_untouched():
        z, centers, s = _dcn_problem(50)
        counts = torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)
        before = _snapshot(centers, counts, z, s)
        fn(centers, counts, z, s)
        _expect(_unchanged(before, (centers, counts, z, s)),
                "your function modified its inputs in place (e.g. counts[k] += 1 or centers.index_add_ on the "
                "argument); clone them first, or use the out-of-place index_add.")

    return _run("check_update_centroids", [("one point per cluster", one_point_per_cluster),
                                           ("several points in one cluster", several_points_in_one_cluster),
                                           ("random batches against the per-point update", matches_reference),
                                           ("the mean of all points after four batches", running_mean_over_batches),
                                           ("inputs left unchanged", inputs_untouched)])
