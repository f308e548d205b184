# rmanalytics: two commands on a fresh machine with Python 3.11, pip and make.
#   make demo   set up .venv and run every notebook on the bundled sample (run folders in runs/)
#   make test   set up .venv with the dev and spark extras and run the whole test suite
# Both are idempotent: a second run reinstalls only when pyproject.toml changed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
export ARROW_DEFAULT_MEMORY_POOL ?= system
export MPLBACKEND ?= Agg

.PHONY: demo test lab setup setup-dev kernel notebooks-clean bench clean

demo: $(VENV)/.stamp-base kernel
	$(PY) -m rmanalytics run-all --out runs

test: $(VENV)/.stamp-dev kernel
	$(PY) -m pytest tests -q -p no:cacheprovider
	RMANALYTICS_CONFIG_DIR=$$(mktemp -d) $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with tests/notebooks/nbval_sanitize.cfg -q -p no:cacheprovider notebooks

lab: $(VENV)/.stamp-dev kernel
	$(VENV)/bin/jupyter lab notebooks

setup: $(VENV)/.stamp-base kernel
setup-dev: $(VENV)/.stamp-dev kernel

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-base: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[dev,spark]"
	touch $(VENV)/.stamp-base $@

# A kernelspec inside the venv, so papermill and JupyterLab never fail with "kernel not found".
kernel: $(VENV)/share/jupyter/kernels/python3/kernel.json
$(VENV)/share/jupyter/kernels/python3/kernel.json: | $(VENV)/bin/python
	$(PY) -m rmanalytics kernel

notebooks-clean: $(VENV)/.stamp-base
	$(PY) tools/strip_notebooks.py

bench: $(VENV)/.stamp-dev
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
