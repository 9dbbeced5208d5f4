"""Sphinx configuration of the course website (`make book`).

The source directory is the repository root (`sphinx-build -c docs . _build/html`), so the pages
are the notebooks themselves, with the paths they have in the repository: `notebooks/02_dec_derivation`
is the lecture, `exercises/lab02_dec` its exercise and `solutions/lab02_dec` its solution. Nothing is
executed: the site shows the committed outputs of the full runs. The front page is `docs/index.md`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "dclib — a deep clustering course"
author = "the dclib course"
copyright = "the dclib course"

extensions = [
    "myst_nb",
    "sphinx.ext.mathjax",
    "sphinx_copybutton",
    "course_site",  # docs/_ext/course_site.py: banners, front-page figure, offline MathJax
]

root_doc = "docs/index"
# only the course: the repository root also holds .venv, results/, benchmarks/ ...
include_patterns = ["docs/*.md", "notebooks/*.ipynb", "exercises/*.ipynb", "solutions/*.ipynb"]
exclude_patterns = [".venv", "_build", "**/.ipynb_checkpoints", "results", "data", ".cache", "build"]

# the committed outputs of the full runs are the content: never execute at build time
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]

html_theme = "sphinx_book_theme"
html_title = "Deep clustering, derived and verified"
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": True,
    # no links that need the network on an offline copy of the site
    "use_repository_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
    "launch_buttons": {},
}
html_static_path: list[str] = []
# MathJax 3 from the site itself, not from a CDN (copied into _static/mathjax by course_site)
mathjax_path = "mathjax/tex-chtml.js"
html_last_updated_fmt = None

# copy buttons on code cells, without the prompts
copybutton_exclude = ".linenos, .gp, .go"
