# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format lab clean staging bench

# The staging runbook against the local servers; the defaults are local trust-auth URLs (no
# secret), and any of them can be overridden from the environment.
export STAGING_LEGACY_A_URL ?= mysql+pymysql://root@127.0.0.1:3306/runbook_staging_legacy_a
export STAGING_TARGET_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/runbook_staging_target
export STAGING_TRIAL_TARGET_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/runbook_staging_trial

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[postgres,mysql,test,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/runbook demo-data --env dev
	$(BIN)/runbook run --env dev
	$(BIN)/runbook status --env dev

staging: $(STAMP)
	$(BIN)/runbook demo-data --env staging
	$(BIN)/runbook run --env staging
	$(BIN)/runbook status --env staging

# Benchmarks print figures side by side with their baselines (needs the local PostgreSQL).
BENCH_ORDERS ?= 1000000
bench: $(STAMP)
	$(BIN)/python bench/bench_load.py --orders $(BENCH_ORDERS)
	@if [ -f bench/bench_validation.py ]; then $(BIN)/python bench/bench_validation.py --orders $(BENCH_ORDERS); fi
	$(BIN)/python bench/bench_transforms.py --orders 100000,$(BENCH_ORDERS) --io

# JupyterLab on the notebooks with the project's kernel; the notebooks default to env dev.
LAB_PORT ?= 8888
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --port=$(LAB_PORT) --no-browser

test: $(STAMP) lint
	$(BIN)/python -m pytest

# The developer's loop (about a minute): no notebooks, no browser, no database server, no cluster.
test-fast: $(STAMP) lint
	$(BIN)/python -m pytest -m "not notebooks and not postgres and not mariadb and not browser and not cluster"

lint: $(STAMP)
	$(BIN)/ruff check runbook_lib runbook_demo tests bench
	$(BIN)/ruff format --check runbook_lib runbook_demo tests bench

format: $(STAMP)
	$(BIN)/ruff format runbook_lib runbook_demo tests bench
	$(BIN)/ruff check --fix runbook_lib runbook_demo tests bench

# Caches and build leftovers only. Never work/ (the environments' SQLite targets and backups) nor
# outputs/ (evidence, chained in each env's ledger). To start the demo afresh, rebuild its own
# databases: `runbook demo-data --env dev` (it drops and recreates the demo's sources and target);
# a new run then gets its own folder under outputs/dev/ beside the earlier ones.
clean:
	find . -path ./.venv -prune -o -path ./work -prune -o -path ./outputs -prune \
		-o -type d -name __pycache__ -print0 | xargs -0 rm -rf
	rm -rf .pytest_cache .ruff_cache .hypothesis build *.egg-info
