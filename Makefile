# rmanalytics: two commands on a fresh machine with Python 3.11, pip and make.
#   make demo   set up .venv from the lock and run every notebook on the bundled sample (runs/)
#   make test   set up .venv (dev and spark sets) from the lock and run the whole test suite
# Both install exactly the versions in requirements/*.txt (exported from uv.lock, with hashes)
# and are idempotent: a second run reinstalls only when the lock or pyproject.toml changed.
# Other targets: lab, lock, test-latest, bench, notebooks-clean, clean.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
UV_VERSION ?= 0.13.9
TEST_JOBS ?= 2
PYTEST := $(PY) -m pytest -p no:cacheprovider
export ARROW_DEFAULT_MEMORY_POOL ?= system
export MPLBACKEND ?= Agg

.PHONY: demo test pytest lab setup setup-dev kernel lock lock-export test-latest notebooks-clean bench clean

demo: $(VENV)/.stamp-base kernel
	$(PY) -m rmanalytics run-all --out runs

test: $(VENV)/.stamp-dev kernel pytest

# The suite itself, on whatever $(VENV) holds (make test: the lock; make test-latest: the newest).
# TEST_JOBS worker processes (pytest-xdist; 0 runs in this process): each test file, and each
# notebook, on one worker (tests/conftest.py groups them; nbval keeps a notebook's cells together).
pytest:
	$(VENV)/bin/lint-imports
	$(PYTEST) tests -q -n $(TEST_JOBS) --dist loadgroup
	RMANALYTICS_CONFIG_DIR=$$(mktemp -d) $(PYTEST) -n $(TEST_JOBS) --dist loadscope --nbval-lax --nbval-current-env --nbval-sanitize-with tests/notebooks/nbval_sanitize.cfg -q notebooks

# JupyterLab with the project's kernel; --allow-root where it runs as root (containers).
lab: $(VENV)/.stamp-dev kernel
	$(VENV)/bin/jupyter lab notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

setup: $(VENV)/.stamp-base kernel
setup-dev: $(VENV)/.stamp-dev kernel

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required, found " + sys.version'
	$(PYTHON) -m venv $(VENV)

# --require-hashes: every package at its locked version and hash; --no-build-isolation: the
# package is built with the locked setuptools (requirements/*.txt hold the build group too).
$(VENV)/.stamp-base: requirements/base.txt pyproject.toml setup.py | $(VENV)/bin/python
	$(PIP) install -q --require-hashes --no-deps -r requirements/base.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.stamp-dev: requirements/dev.txt pyproject.toml setup.py | $(VENV)/bin/python
	$(PIP) install -q --require-hashes --no-deps -r requirements/dev.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $(VENV)/.stamp-base $@

# The kernel the notebooks name ("rmanalytics"), inside the venv, so papermill and JupyterLab
# always find it and it runs this venv's interpreter.
kernel: $(VENV)/share/jupyter/kernels/rmanalytics/kernel.json
$(VENV)/share/jupyter/kernels/rmanalytics/kernel.json: | $(VENV)/bin/python
	$(PY) -m rmanalytics kernel

# Refresh the lock: newest versions the ranges in pyproject.toml allow, then the pip-readable
# exports. Review the diff, run `make test`, commit uv.lock and requirements/ together.
lock: | $(VENV)/.stamp-uv-$(UV_VERSION)
	$(VENV)/bin/uv lock --upgrade --python 3.11
	$(MAKE) lock-export

lock-export: | $(VENV)/.stamp-uv-$(UV_VERSION)
	$(VENV)/bin/uv export --frozen --format requirements-txt --no-emit-project --group build --no-header --no-dev -o requirements/base.txt >/dev/null
	$(VENV)/bin/uv export --frozen --format requirements-txt --no-emit-project --group build --no-header --no-dev --extra spark -o requirements/spark.txt >/dev/null
	$(VENV)/bin/uv export --frozen --format requirements-txt --no-emit-project --group build --no-header --no-dev --extra dev --extra spark -o requirements/dev.txt >/dev/null

$(VENV)/.stamp-uv-$(UV_VERSION): | $(VENV)/bin/python
	$(PIP) install -q "uv==$(UV_VERSION)"
	touch $@

# Upgrades on purpose: the suite against the newest releases the ranges allow, in .venv-latest.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --upgrade pip
	.venv-latest/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e ".[dev,spark]"
	.venv-latest/bin/python -m rmanalytics kernel
	$(MAKE) pytest VENV=.venv-latest

notebooks-clean: $(VENV)/.stamp-base
	$(PY) tools/strip_notebooks.py

bench: $(VENV)/.stamp-dev
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .venv-latest runs .pytest_cache build *.egg-info

# Optional: a Chinese font for the figures of lang: zh runs. Does nothing when one is found already;
# else installs fonts-noto-cjk (Debian/Ubuntu apt) or font-ttf-noto-cjk (active conda env), else
# says what to do. rmanalytics finds fonts installed later without clearing matplotlib's cache.
.PHONY: fonts
fonts: $(VENV)/.stamp-base
	@if $(PY) -m rmanalytics.fonts >/dev/null 2>&1; then $(PY) -m rmanalytics.fonts; exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y fonts-noto-cjk; else sudo apt-get install -y fonts-noto-cjk; fi; \
	elif [ -n "$$CONDA_PREFIX" ] && command -v conda >/dev/null 2>&1; then \
	  conda install -y -c conda-forge font-ttf-noto-cjk; \
	fi; \
	$(PY) -m rmanalytics.fonts
