from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbclient import NotebookClient

from dclib import checks, cluster_acc, nmi
from dclib.cli import main
from dclib.labs import generate_exercises
from dclib.losses import dec_gradients, student_t_assignment, target_distribution


def stub(*args, **kwargs):
    raise NotImplementedError()


# (check, reference solution, a plausible wrong answer a learner might write)
CHECKS = [
    (checks.check_cluster_acc, cluster_acc, lambda t, p: float(np.mean(np.asarray(t) == np.asarray(p)))),
    (checks.check_nmi, nmi, lambda t, p: 0.5),
    (checks.check_student_t_assignment, student_t_assignment,
     lambda z, mu, a: torch.softmax(-((z[:, None] - mu[None]) ** 2).sum(-1), 1)),
    (checks.check_target_distribution, target_distribution, lambda q: q**2 / (q**2).sum(1, keepdim=True)),
    (checks.check_dec_gradients, dec_gradients, lambda z, mu, p, a: tuple(-g for g in dec_gradients(z, mu, p, a))),
]


@pytest.mark.parametrize("check, solution, wrong", CHECKS, ids=[c[0].__name__ for c in CHECKS])
def test_each_check_fails_on_stub_and_wrong_answer_passes_on_solution(check, solution, wrong, capsys):
    assert check(stub) is False
    assert "not implemented" in capsys.readouterr().out
    assert check(wrong) is False
    assert "✗" in capsys.readouterr().out
    assert check(solution) is True
    assert "✓" in capsys.readouterr().out


ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))


def test_exercises_are_generated_from_solutions():
    assert EXERCISES, "no exercises found"
    stale = generate_exercises(ROOT / "solutions", ROOT / "exercises", check=True)
    assert stale == [], f"run `make exercises`: {stale} out of sync with solutions/"


@pytest.mark.parametrize("path", EXERCISES, ids=[p.stem for p in EXERCISES])
def test_every_exercise_check_fails_on_the_stub(path):
    """Run the generated exercise as a learner would, untouched: every auto-check must fail.

    (The solutions pass the same checks: nbval runs them with their ``assert check_...`` cells.)
    """
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    check_cells = [c for c in nb.cells if c.cell_type == "code" and "check_" in c.source and "assert" in c.source]
    assert check_cells, f"{path.name} has no auto-check cells"
    for cell in check_cells:
        text = "".join(o.get("text", "") + "".join(o.get("traceback", [])) for o in cell.outputs)
        failed = any(o.output_type == "error" for o in cell.outputs) or "✗" in text
        assert failed, f"{path.name}: a check passed on the stub:\n{cell.source}"


def test_cli_compare_prints_table_and_writes_results(tmp_path, capsys):
    code = main(["compare", "--data", "digits", "--methods", "kmeans,kmeans-pca", "--seeds", "2",
                 "--out", str(tmp_path), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0 and "kmeans-pca" in out and "±" in out and "cpu" in out
    assert {p.name for p in tmp_path.iterdir()} == {"compare_digits_runs.csv", "compare_digits_summary.csv",
                                                   "compare_digits.png", "compare_digits_acc_vs_time.png"}


def test_cli_reports_bad_arguments(capsys):
    assert main(["compare", "--data", "nope", "--methods", "kmeans"]) == 2
    assert "Unknown dataset" in capsys.readouterr().err
    assert main(["compare", "--data", "digits", "--methods", "kmeans,magic"]) == 2
    assert "Unknown method" in capsys.readouterr().err
