# The two commands of the README: `make demo` (run the product) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps check test test-unit test-integration demo up down status bench clean

install: system-deps $(STAMP)

system-deps:
	@bash infra/install-system.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

## everything: lint and type checks, then unit, integration and end-to-end tests (the tests
## start the stack themselves)
test: install check
	$(BIN)/python -m pytest -m "" $(PYTEST_ARGS)

## the code-health gate: ruff (lint, import order) and mypy (types), configured in pyproject.toml
check: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test-unit: install check
	$(BIN)/python -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

test-integration: install
	$(BIN)/python -m pytest -m "integration or e2e" $(PYTEST_ARGS)

demo: install
	$(BIN)/creditrisk demo

up: install
	$(BIN)/creditrisk stack up

down:
	$(BIN)/creditrisk stack down

status:
	$(BIN)/creditrisk stack status

## every benchmark suite, or one: make bench BENCH_SUITE=throughput
BENCH_SUITE ?= all
bench: install
	$(BIN)/creditrisk bench --suite $(BENCH_SUITE)

clean: down
	rm -rf .stack reports
