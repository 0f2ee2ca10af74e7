# Canopy: the front door. `make help` lists the targets.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PROTO_SRC := $(shell find protos -name '*.proto' 2>/dev/null)
PROTO_STAMP := canopy/.generated

.DEFAULT_GOAL := help
.PHONY: help venv protos run test lint bench clients clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --config-settings editable_mode=compat -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## create the virtual environment with every dependency

$(PROTO_STAMP): $(VENV)/.installed $(PROTO_SRC) scripts/gen_protos.py
	$(PY) scripts/gen_protos.py
	touch $@

protos: $(PROTO_STAMP) ## generate Python code from protos/ into canopy/ (never edit it by hand)

run: $(PROTO_STAMP) ## run everything (embedded PostgreSQL and NATS unless DATABASE_URL / NATS_URL are set)
	$(PY) -m devstack run

test: $(PROTO_STAMP) ## the whole suite: boundaries, lint, unit, integration and end to end
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

bench: $(PROTO_STAMP) ## benchmarks against the raw limits on this machine (minutes)
	$(PY) -m bench.ingest
	$(PY) -m bench.sftp
	$(PY) -m bench.gateway

clients: $(PROTO_STAMP) ## TypeScript types for every API message (clients/typescript/canopy.ts)
	$(PY) scripts/gen_ts_types.py

clean: ## remove generated code, the virtual environment and local data
	rm -rf canopy $(VENV) var
