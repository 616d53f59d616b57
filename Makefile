# The two commands of the README: `make run` and `make test`. Everything else is a helper of those.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test bench chaos soak lint venv dev-venv frontend api-types

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

# The browser app: rebuilt when frontend/dist is missing or older than any source or package file.
FRONTEND_INPUTS := $(shell find frontend/src -type f 2>/dev/null) $(wildcard frontend/index.html \
	frontend/package.json frontend/package-lock.json frontend/vite.config.ts frontend/tsconfig.json)

frontend/node_modules/.stamp: frontend/package.json frontend/package-lock.json
	@command -v npm >/dev/null || { echo "error: Node.js 20.19+ and npm are required to build frontend/" >&2; exit 1; }
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

frontend/dist/index.html: frontend/node_modules/.stamp $(FRONTEND_INPUTS) | $(VENV)/.runtime-stamp
	$(MAKE) --no-print-directory api-types
	cd frontend && npm run build --silent

frontend: frontend/dist/index.html

## make api-types: regenerate frontend/src/api/{openapi.json,schema.d.ts} from the API (only files that changed)
api-types: $(VENV)/.runtime-stamp frontend/node_modules/.stamp
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN)/python -m backend.web.openapi_dump > $$tmp/openapi.json && \
	frontend/node_modules/.bin/openapi-typescript $$tmp/openapi.json -o $$tmp/schema.d.ts >/dev/null && \
	for f in openapi.json schema.d.ts; do \
		cmp -s $$tmp/$$f frontend/src/api/$$f || { cp $$tmp/$$f frontend/src/api/$$f; echo "updated frontend/src/api/$$f"; }; \
	done

## make run: set up and start the whole product (http://127.0.0.1:8000, data in ./data)
run: venv frontend
	$(BIN)/playground up

## make test: set up and run every test (starts the local PostgreSQL and Redis when they are down)
test: dev-venv frontend
	bash infra/dev/ensure-services.sh
	bash infra/dev/ensure-chromium.sh
	$(BIN)/ruff check backend tests migrations
	cd frontend && npm test --silent
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: the on-demand benchmarks in tests/bench (not part of make test)
bench: dev-venv
	bash infra/dev/ensure-services.sh
	$(BIN)/python -m pytest tests/bench -s $(PYTEST_ARGS)

## make chaos: the fault-injection run alone (it is part of make test too; PLAYGROUND_CHAOS_RUNS, PLAYGROUND_CHAOS_SEED)
chaos: dev-venv
	bash infra/dev/ensure-services.sh
	$(BIN)/python -m pytest tests/test_fault_injection.py -s $(PYTEST_ARGS)

## make soak: the on-demand soak in tests/soak (SOAK_MINUTES, default 30; not part of make test)
soak: dev-venv
	bash infra/dev/ensure-services.sh
	$(BIN)/python -m tests.soak.soak

lint: dev-venv
	$(BIN)/ruff check backend tests migrations
