# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format lab clean

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

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check runbook_lib tests
	$(BIN)/ruff format --check runbook_lib tests

format: $(STAMP)
	$(BIN)/ruff format runbook_lib tests
	$(BIN)/ruff check --fix runbook_lib tests

clean:
	rm -rf work outputs/dev outputs/ci
