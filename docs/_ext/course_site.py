"""The course-specific parts of the website, as one small Sphinx extension.

- a banner under each page's title: how long a full run takes on a CPU and on a GPU, and the
  links between a lecture, its lab exercise and the lab's solution (from `docs/course.toml`);
  injected when Sphinx reads the notebook (`source-read`), so the notebooks stay as committed;
- the front page's comparison figure and table, cut out of the committed outputs of
  `notebooks/09_comparison.ipynb` (nothing is executed), and the path through the lectures,
  generated from the notebooks present (a new `notebooks/NN_*.ipynb` joins by itself);
- MathJax 3 served from the site itself (copied from the `sphinx-mathjax-offline` package), so the
  equations render with no network, and a root `index.html` that opens the front page.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"
MATHJAX_DIR = "mathjax"  # under _static/
COMPARISON_NB = ROOT / "notebooks" / "09_comparison.ipynb"
# how the front page finds its figure and table in notebook 09: a marker in the cell's source
FIGURE_MARKER = "plot_accuracy_vs_time"
TABLE_MARKER = "verdict = "

LECTURE = re.compile(r"^notebooks/(?P<num>\d\d)_[\w-]+$")
LAB = re.compile(r"^(?P<kind>exercises|solutions)/(?P<lab>lab(?P<num>\d\d)_[\w-]+)$")


def load_course() -> dict[str, Any]:
    """`docs/course.toml`: each lecture's labs and measured CPU minutes."""
    return tomllib.loads((DOCS / "course.toml").read_text(encoding="utf-8"))


def notebook_title(path: Path) -> str:
    """The first Markdown heading of a notebook (its page title on the site)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise ExtensionError(f"{path}: no '# title' heading in any Markdown cell; every page needs one")


def lecture_of_lab(lab: str, course: dict[str, Any]) -> str | None:
    """The lecture (notebook stem) whose `labs` list names this lab."""
    for stem, entry in course["lectures"].items():
        if lab in entry.get("labs", []):
            return stem
    return None


def cpu_text(entry: dict[str, Any] | None, run: str = "a full run") -> str:
    """'≈N min for a full run on a 2-core CPU (measured)', from a course.toml entry."""
    if entry is None or "cpu_min" not in entry:
        return f"{run}: not measured yet"
    text = f"≈{entry['cpu_min']:g} min for {run} on a 2-core CPU (measured)"
    if "cpu_note" in entry:
        text += f"; {entry['cpu_note']}"
    return text


def banner(docname: str, course: dict[str, Any]) -> str | None:
    """The MyST admonition put under the title of a lecture, exercise or solution page."""
    gpu_note = course["gpu_note"]["text"]
    lectures = course["lectures"]
    if m := LECTURE.match(docname):
        stem = docname.split("/", 1)[1]
        entry = lectures.get(stem)
        lines = [
            f"- **CPU:** {cpu_text(entry)}; `DCLIB_FAST=1` runs the same code on less data in under 2 minutes.",
            f"- **GPU:** {entry['gpu'] if entry else 'not measured yet'} ({gpu_note}).",
        ]
        labs = entry.get("labs", []) if entry else []
        if labs:
            links = "; ".join(
                f"{{doc}}`{lab} exercise </exercises/{lab}>` (its {{doc}}`solution </solutions/{lab}>`)"
                for lab in labs
            )
            lines.append(f"- **Lab:** {links}.")
        else:
            lines.append("- **Lab:** none for this lecture; its exercises are the questions in the text.")
        lines.append(f"- **Run it:** `make lab`, then open `{docname}.ipynb` (or download it with the button above).")
        title = f"Lecture {m['num']}: time and lab"
    elif m := LAB.match(docname):
        lab, kind = m["lab"], m["kind"]
        lecture = lecture_of_lab(lab, course)
        if lecture is None:
            raise ExtensionError(f"{docname}: no lecture in docs/course.toml lists {lab!r} in its labs")
        other = "solutions" if kind == "exercises" else "exercises"
        entry = course.get("labs", {}).get(lab)
        lines = [
            f"- **Lecture:** {{doc}}`/notebooks/{lecture}` derives what this lab implements.",
            f"- **CPU:** {cpu_text(entry, 'a full run of the solution')}; the time that counts is writing the code.",
            f"- **GPU:** {entry['gpu'] if entry else 'not measured yet'} ({gpu_note}).",
        ]
        if kind == "exercises":
            lines.append(
                f"- **How:** open `exercises/{lab}.ipynb` (`make lab`), replace each `# YOUR CODE HERE` stub "
                f"with your code, and run the check cell under it. Stuck? The {{doc}}`solution </solutions/{lab}>`."
            )
            title = "Exercise"
        else:
            lines.append(f"- **The exercise** without the answers: {{doc}}`/{other}/{lab}`.")
            title = "Solution"
    else:
        return None
    return f":::{{admonition}} {title}\n:class: tip\n\n" + "\n".join(lines) + "\n:::\n"


def add_banner(app: Sphinx, docname: str, source: list[str]) -> None:
    """`source-read`: put the banner right under the notebook's `# title` line."""
    if not docname.startswith(("notebooks/", "exercises/", "solutions/")):
        return
    text = banner(docname, app.config.course)
    if text is None:
        return
    nb = json.loads(source[0])
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        lines = src.split("\n")
        for i, line in enumerate(lines):
            if line.startswith("# "):
                lines[i + 1 : i + 1] = ["", text]
                cell["source"] = "\n".join(lines)
                source[0] = json.dumps(nb)
                return
    raise ExtensionError(f"{docname}: no '# title' heading to put the time/lab banner under")


def comparison_outputs(nb_path: Path) -> tuple[bytes, str]:
    """The accuracy-vs-time figure (PNG) and the 'which method' table (HTML) of notebook 09."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    png = table = None
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if FIGURE_MARKER in src and "image/png" in data and png is None:
                png = base64.b64decode("".join(data["image/png"]))
            if src.startswith(TABLE_MARKER) and "text/html" in data and table is None:
                # pandas' NaN is a method the notebook did not run in that setting: show a dash
                table = "".join(data["text/html"]).replace("<td>NaN</td>", "<td>–</td>")
    if png is None or table is None:
        missing = f"figure (a cell calling {FIGURE_MARKER})" if png is None else f"table (a cell '{TABLE_MARKER}…')"
        raise ExtensionError(
            f"{nb_path}: no committed output for the front page's {missing}; run the notebook "
            "(`make notebooks`) or update FIGURE_MARKER/TABLE_MARKER in docs/_ext/course_site.py"
        )
    return png, table


def course_path(course: dict[str, Any]) -> str:
    """The front page's table: every lecture notebook in order, its time and its labs."""
    rows = ["| # | lecture | CPU (full run) | GPU (estimate) | lab |", "|---|---|---|---|---|"]
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        entry = course["lectures"].get(path.stem)
        labs = ", ".join(f"{{doc}}`{lab} </exercises/{lab}>`" for lab in (entry or {}).get("labs", [])) or "–"
        cpu = f"{entry['cpu_min']:g} min" if entry and "cpu_min" in entry else "not measured"
        gpu = entry["gpu"] if entry else "not measured"
        rows.append(f"| {path.stem[:2]} | {{doc}}`/notebooks/{path.stem}` | {cpu} | {gpu} | {labs} |")
    return "\n".join(rows) + "\n"


def write_if_changed(path: Path, content: bytes) -> None:
    """Rewrite only what changed: an unchanged file keeps its mtime, so Sphinx does not re-read the front page."""
    if not path.is_file() or path.read_bytes() != content:
        path.write_bytes(content)


def write_generated(app: Sphinx) -> None:
    """`builder-inited`: write docs/_generated/ (git-ignored) from the committed notebooks."""
    GENERATED.mkdir(exist_ok=True)
    png, table = comparison_outputs(COMPARISON_NB)
    write_if_changed(GENERATED / "comparison.png", png)
    write_if_changed(GENERATED / "comparison_table.html", f'<div class="comparison-table">\n{table}\n</div>\n'.encode())
    write_if_changed(GENERATED / "course_path.md", course_path(app.config.course).encode())


def mathjax_source() -> Path:
    """MathJax 3's files, as the `sphinx-mathjax-offline` package ships them."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(
            "the site bundles MathJax from the 'sphinx-mathjax-offline' package, which is not installed: "
            "run `uv sync --frozen` (it is in the docs dependency group)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    if not (path / "tex-chtml.js").is_file():
        raise ExtensionError(f"{path}/tex-chtml.js is missing: reinstall sphinx-mathjax-offline")
    return path


def finish(app: Sphinx, exc: Exception | None) -> None:
    """`build-finished`: copy MathJax into _static/ and write the root redirect."""
    if exc is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    shutil.copytree(mathjax_source(), out / "_static" / MATHJAX_DIR, dirs_exist_ok=True)
    front = html.escape(app.config.root_doc + ".html")
    (out / "index.html").write_text(
        f'<!DOCTYPE html>\n<meta charset="utf-8">\n<title>dclib course</title>\n'
        f'<meta http-equiv="refresh" content="0; url={front}">\n<a href="{front}">The course</a>\n',
        encoding="utf-8",
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("course", load_course(), "env")
    # conf.py sets mathjax_path = "mathjax/tex-chtml.js": MathJax from _static/, copied in `finish`
    mathjax_source()  # fail at start, with the fix, if the package is missing
    app.connect("builder-inited", write_generated)
    app.connect("source-read", add_banner)
    app.connect("build-finished", finish)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
