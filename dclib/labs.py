"""The lab pipeline: ``solutions/`` is the single source, ``exercises/`` is generated from it.

Solution code sits between ``### BEGIN SOLUTION`` / ``### END SOLUTION``; nbgrader's
``ClearSolutions`` replaces it with a stub (standalone, no course database), outputs are cleared.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

__all__ = ["make_exercise", "generate_exercises"]


def make_exercise(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercise version of a solution notebook: solutions stubbed, outputs cleared."""
    from nbconvert.preprocessors import ClearOutputPreprocessor
    from nbgrader.preprocessors import ClearSolutions

    nb = nbformat.from_dict(nb)  # a copy, the solution is left untouched
    nb, _ = ClearSolutions(enforce_metadata=False).preprocess(nb, {})
    nb, _ = ClearOutputPreprocessor().preprocess(nb, {})
    for cell in nb.cells:  # cell ids are kept, so regenerating is byte-for-byte reproducible
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def _render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def generate_exercises(solutions: str | Path = "solutions", exercises: str | Path = "exercises",
                       check: bool = False) -> list[Path]:
    """Write (or with ``check=True`` only compare) every exercise; returns the out-of-sync paths."""
    solutions, exercises = Path(solutions), Path(exercises)
    exercises.mkdir(exist_ok=True)
    stale = []
    expected_names = set()
    for src in sorted(solutions.glob("*.ipynb")):
        dst = exercises / src.name
        expected_names.add(dst.name)
        text = _render(make_exercise(nbformat.read(src, as_version=4)))
        if not dst.exists() or dst.read_text() != text:
            stale.append(dst)
            if not check:
                dst.write_text(text)
    stale += [p for p in exercises.glob("*.ipynb") if p.name not in expected_names]
    return stale
