"""benchmarks/gpu.py: every job of every plan builds a valid estimator (no GPU needed: nothing is fitted)."""

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
