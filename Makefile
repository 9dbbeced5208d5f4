# The course's commands. Everything runs inside the uv-managed .venv built from uv.lock.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --frozen
export PYTHONHASHSEED := 0

.PHONY: install demo test test-lib test-notebooks lab exercises lint notebooks benchmarks book clean

install: .venv/.synced

.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode
	@touch $@

## make demo: compare every method on the embedded MNIST subset (CPU or GPU automatically)
demo: install
	$(RUN) python -m dclib compare --data mnist5k --methods all --seeds 3

## make test: library tests (pytest) + notebooks and lab solutions (nbval, fast mode).
## Two workers with one thread each (pytest-xdist; a notebook's cells stay together in one worker):
## the tests are many small tensors, which one thread per core runs faster than two threads.
PYTEST := DCLIB_FAST=1 OMP_NUM_THREADS=1 $(RUN) pytest -n $(or $(WORKERS),2) --dist loadfile -p no:cacheprovider

test: install
	$(PYTEST) tests notebooks solutions --nbval-lax

test-lib: install
	$(PYTEST) tests

test-notebooks: install
	$(PYTEST) notebooks solutions --nbval-lax

## make lab: open JupyterLab on the course
lab: install
	$(RUN) jupyter lab notebooks/00_introduction.ipynb

## make exercises: regenerate exercises/ from solutions/ (never edit exercises by hand)
exercises: install
	$(RUN) python tools/make_exercises.py

## make notebooks: re-run every lecture and solution at full size, saving outputs in place
notebooks: install
	for nb in notebooks/*.ipynb solutions/*.ipynb; do \
	  $(RUN) jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1800 $$nb || exit 1; \
	done

lint: install
	$(RUN) ruff check .

## make book: the course as a static website in _build/html, from the notebooks' committed outputs
## (nothing executed, MathJax bundled: it works offline); warnings are errors. tests/test_site.py
## opens it in headless Chromium.
book: install
	$(RUN) sphinx-build -b html -c docs -W --keep-going -q . _build/html
	@echo "the course website: _build/html/index.html"

benchmarks: install
	$(RUN) python benchmarks/bench_methods.py

clean:
	rm -rf .venv results .pytest_cache _build docs/_generated
