# The two commands of the README: `make run` and `make test`. Everything else is a helper of those.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test bench lint venv dev-venv

# A stamp per dependency set: re-installs only when pyproject.toml changes.
$(VENV)/.runtime-stamp: pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11+ is required" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.dev-stamp: pyproject.toml $(VENV)/.runtime-stamp
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.runtime-stamp
dev-venv: $(VENV)/.dev-stamp

## make run: set up and start the whole product (http://127.0.0.1:8000, data in ./data)
run: venv
	$(BIN)/playground up

## make test: set up and run every test (starts the local PostgreSQL and Redis when they are down)
test: dev-venv
	bash infra/dev/ensure-services.sh
	$(BIN)/ruff check backend tests migrations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: the on-demand benchmarks in tests/bench (not part of make test)
bench: dev-venv
	bash infra/dev/ensure-services.sh
	$(BIN)/python -m pytest tests/bench -s $(PYTEST_ARGS)

lint: dev-venv
	$(BIN)/ruff check backend tests migrations
