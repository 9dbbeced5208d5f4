"""benchmarks/gpu.py: every job of every plan builds a valid estimator, and a row says when its fit fell back to
eager steps (no GPU needed)."""

import re
import sys
from pathlib import Path

import pandas as pd
import pytest


@pytest.mark.parametrize("fast", [False, True])
def test_every_planned_job_builds_with_its_overrides(fast, benchmark_script):
    # A misspelt override (say final_mixture) or a method missing from dclib.compare would otherwise only
    # show on the GPU machine, as a failed job in the middle of a time-limited run.
    gpu = benchmark_script("gpu")
    for name, plan in gpu.PLANS.items():
        jobs = plan(3, fast)
        assert jobs, name
        for job in jobs:
            if job.library == "clustpy":  # an optional dependency, not installed for the tests
                continue
            model = gpu.build(job, 10, "cpu", fast)
            params = model.get_params()
            if job.library == "ours-gpu":
                assert all(params[key] == value for key, value in job.overrides.items()), (name, job)


def test_targets_plan_puts_the_open_issues_rows_first(benchmark_script):
    gpu = benchmark_script("gpu")
    jobs = gpu.plan_targets(3, False)
    first = [(job.data, job.method) for job in jobs[:3]]
    assert first == [("mnist-test", "vade"), ("mnist-test", "ae-kmeans"), ("mnist-test", "dcn")]
    vade = [job for job in jobs if job.method == "vade" and job.library == "ours-gpu"]
    assert {job.data for job in vade} == {"mnist-test", "mnist"} and len(vade) == 6
    assert all(job.overrides["final_mixture"] == "full" for job in vade)  # one fit scores both read-outs
    assert jobs[-1].method == "jule"  # O(n²) affinities: last, so the deadline skips it before anything else


def test_vade_plan_times_where_the_em_runs_on_one_machine(benchmark_script):
    # #9's VaDE ratio: per seed the same fit with its full-covariance EM batched on the device (the default on a
    # GPU), in scikit-learn, and in scikit-learn's parallel processes, then ClustPy's VaDE on the same data; the
    # three variants differ in mixture_backend and n_jobs only, so they time that lever alone.
    gpu = benchmark_script("gpu")
    jobs = gpu.plan_vade(3, False)
    keys = [job.key for job in jobs]
    variants = ("da", "da-sklearn", "da-jobs")
    assert keys[:12] == [f"mnist-test/ours-gpu/vade+{v}/{s}" for s in range(3) for v in variants] + [
        f"mnist-test/clustpy/vade/{s}" for s in range(3)]  # the ratio's other half, over the same seeds
    assert {k for k in keys if k.startswith(("mnist-test/clustpy/dec/", "mnist-test/clustpy/idec/"))} == {
        f"mnist-test/clustpy/{m}/{s}" for m in ("dec", "idec") for s in (1, 2)}  # session 16 ran their seed 0
    assert keys[-1] == "mnist/clustpy/vade/0"
    for default, sequential, parallel in zip(jobs[:9:3], jobs[1:9:3], jobs[2:9:3], strict=True):
        assert default.overrides == {**gpu.GPU_BUDGET["mnist-test"]["vade"], **gpu.VADE_AUGMENTED}
        assert sequential.overrides == {**default.overrides, "mixture_backend": "sklearn"}
        assert parallel.overrides == {**sequential.overrides, "n_jobs": -1}
    assert all(job.overrides["epochs"] == 1 for job in gpu.plan_vade(1, True) if job.library == "ours-gpu")


def test_the_stream_script_runs_every_one_of_our_target_jobs_once(benchmark_script):
    # benchmarks/gpu_targets.sh runs the plan as one process alone and five side by side, each picked by its --jobs
    # patterns (read here from the script itself); a job matched by none of them would silently never run.
    gpu = benchmark_script("gpu")
    script = (Path(__file__).parents[1] / "benchmarks" / "gpu_targets.sh").read_text()
    groups = re.findall(r"--jobs '([^']+)'", script) + re.findall(r"^stream \w+ '([^']+)' &$", script, re.M)
    assert len(groups) == 6, groups
    jobs = gpu.plan_targets(3, False)
    picked = [[job.key for job in jobs if gpu.matches(job, set(group.split(",")))] for group in groups]
    assert picked[0] == [f"mnist-test/ours-gpu/{m}/{s}" for s in range(3) for m in ("vade", "ae-kmeans", "dcn")]
    assert picked[1] == [f"mnist/ours-gpu/vade/{s}" for s in range(3)]
    assert sorted(picked[4]) == sorted(f"mnist/ours-gpu/{m}/{s}" for m in ("den", "embedding") for s in range(3))
    ours = [job.key for job in jobs if job.library != "clustpy"]
    assert sorted(sum(picked, [])) == sorted(ours)  # each of our jobs in exactly one process


def test_graphs_plan_times_ours_and_clustpys_on_one_machine_before_the_full_mnist_rows(benchmark_script):
    # #9's ratios need our DEC, IDEC and VaDE and ClustPy's on the same machine in the same call: those jobs come
    # first, so a tight deadline drops full-MNIST rows, not a ratio's other half.
    gpu = benchmark_script("gpu")
    keys = [job.key for job in gpu.plan_graphs(3, False)]
    test_set = [k for k in keys if k.startswith("mnist-test/")]
    assert keys[:len(test_set)] == test_set
    assert {k for k in test_set if "/clustpy/" in k} == {f"mnist-test/clustpy/{m}/0" for m in ("dec", "idec", "vade")}
    for method in ("ae-kmeans", "dec", "idec", "dcn", "vade+da", "ae-kmeans+da", "dec+da"):
        assert [k for k in test_set if k.startswith(f"mnist-test/ours-gpu/{method}/")] == [
            f"mnist-test/ours-gpu/{method}/{s}" for s in range(3)]
    jobs = gpu.plan_graphs(3, False)
    ours_vade = [job for job in jobs if job.method == "vade" and job.library == "ours-gpu"]
    assert len(ours_vade) == 6 and all(job.overrides["final_mixture"] == job.overrides["mixture_start"] == "full"
                                       and job.overrides["pretrain_augment"] is True and job.name == "vade+da"
                                       and job.overrides["n_init"] == 20 and job.overrides["epochs"] == 30
                                       for job in ours_vade)
    assert keys[-2:] == ["mnist/clustpy/dec/0", "mnist/clustpy/vade/0"]  # the full-MNIST ratios, last: the longest
    assert [job.overrides for job in jobs[-2:]] == [dict(pretrain_epochs=50, clustering_epochs=50),  # the issue's
                                                    dict(pretrain_epochs=50, clustering_epochs=30)]  # VaDE's, ours
    fast = [job for job in gpu.plan_graphs(1, True) if job.name == "vade+da"]  # --fast keeps its short epochs
    assert fast and all(job.overrides["epochs"] == 1 and job.overrides["n_init"] == 20 for job in fast)
    # an augmented DEC shares the augmented AE + k-means's autoencoder (the same pretraining), not the plain one
    for data in ("mnist-test", "mnist"):
        pretraining = {job.name: {k: v for k, v in job.overrides.items() if k.startswith("pretrain")}
                       for job in jobs if job.data == data and job.method in ("ae-kmeans", "dec")}
        assert pretraining["dec+da"] == pretraining["ae-kmeans+da"] != pretraining["dec"]


class _FailingCapture:
    """A graph backend whose capture fails, as one would on a GPU if a step synced with the host."""

    def warm_up(self, fn, times):
        pass

    def capture(self, fn):
        raise RuntimeError("operation not permitted when stream is capturing")


def test_a_fit_that_fell_back_to_eager_steps_says_so_in_its_row(benchmark_script, monkeypatch, tmp_path):
    # Its seconds are then the slow path's: a ratio computed from that row must not pass for the graphed one.
    import dclib
    import dclib.train

    gpu = benchmark_script("gpu")
    mnist5k = dclib.load_dataset("mnist5k")
    monkeypatch.setattr(dclib, "load_dataset", lambda name, root=None, **kwargs: mnist5k)  # no MNIST files in CI
    monkeypatch.setattr(dclib.train, "graph_backend", lambda device: _FailingCapture())
    monkeypatch.setattr(sys, "argv", ["gpu.py", "--plan", "graphs", "--device", "cpu", "--fast", "--n", "150",
                                      "--seeds", "1", "--jobs", "mnist-test/ours-gpu/dec/0", "--out", str(tmp_path)])
    with pytest.warns(RuntimeWarning, match="train eagerly instead"):
        gpu.main()
    (row,) = pd.read_csv(tmp_path / "gpu_runs.csv").to_dict("records")
    assert row["method"] == "dec" and row["note"] == "eager after a failed graph capture: pretrain (end-to-end), DEC"
    assert 0 < row["pretrain_seconds"] < row["fit_seconds"] and pd.isna(row["mixture_seconds"])  # DEC has no EM


def test_the_vade_plan_runs_its_three_em_variants_to_the_same_fit(benchmark_script, monkeypatch, tmp_path):
    # On the CPU "auto" is scikit-learn, so the three rows must agree exactly; each records its EM's seconds.
    import dclib

    gpu = benchmark_script("gpu")
    mnist5k = dclib.load_dataset("mnist5k")
    monkeypatch.setattr(dclib, "load_dataset", lambda name, root=None, **kwargs: mnist5k)  # no MNIST files in CI
    monkeypatch.setattr(sys, "argv", ["gpu.py", "--plan", "vade", "--device", "cpu", "--fast", "--n", "300",
                                      "--seeds", "1", "--jobs", "mnist-test/ours-gpu/vade+*/0", "--out", str(tmp_path)])
    gpu.main()
    rows = pd.read_csv(tmp_path / "gpu_runs.csv")
    assert list(rows["method"]) == ["vade+da", "vade+da-sklearn", "vade+da-jobs"]
    assert rows["acc"].nunique() == 1 and rows["own_acc"].nunique() == 1
    assert (rows["mixture_seconds"] > 0).all() and (rows["mixture_seconds"] < rows["fit_seconds"]).all()


def test_a_clustpy_job_trains_at_its_own_budget(benchmark_script, monkeypatch):
    # ClustPy is optional (not installed for the tests): a stand-in records the budget build() hands it.
    import types

    gpu = benchmark_script("gpu")

    class Recorder:
        def __init__(self, n_clusters, **params):
            self.params = params

    fake = types.ModuleType("clustpy")
    fake.deep = types.SimpleNamespace(DEC=Recorder, IDEC=Recorder, DCN=Recorder, VaDE=Recorder)
    monkeypatch.setitem(sys.modules, "clustpy", fake)
    full_dec, full_vade = gpu.plan_graphs(1, False)[-2:]
    assert gpu.build(full_dec, 10, "cpu", False).params["clustering_epochs"] == 50
    assert gpu.build(full_vade, 10, "cpu", False).params["clustering_epochs"] == 30
    test_set = gpu.build(gpu.Job("mnist-test", "clustpy", "vade", 0), 10, "cpu", False).params
    assert (test_set["pretrain_epochs"], test_set["clustering_epochs"]) == gpu.CLUSTPY_EPOCHS
    assert gpu.build(full_vade, 10, "cpu", True).params["clustering_epochs"] == 1  # --fast keeps a dry run short
