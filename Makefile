# The two commands of the README: `make demo` (run the product) and `make test`; `make
# test-fast` is the quick loop while coding.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Python keeps compiled modules (__pycache__, and pytest's rewritten test modules) even where
# the environment asks it not to: without them every process of a run (each test worker, each
# worker, ledger writer and CLI a stack test starts) compiles pandas, scikit-learn and the
# project again, about 7 s of CPU per process.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install system-deps check test test-fast test-unit test-integration test-cluster demo up down status bench clean

install: system-deps $(STAMP)

system-deps:
	@bash infra/install-system.sh

# uv installs the same requirements from PyPI several times faster than pip (about 17 s
# against 74 s for a fresh virtualenv here), which is most of a fresh clone's setup.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv>=0.5,<1"
	$(BIN)/uv pip install -q --python $(BIN)/python -e ".[dev]"
	@touch $(STAMP)

# The two tiers of tests. Those that need no server run on every core (pytest-xdist, one
# test file per worker so a file's shared fixtures are built once), the longest files first
# (tests/conftest.py, EXPECTED_FILE_SECONDS; not xdist's order by test count, which starts the
# two files that train models last). Those on the real stack
# run three at a time: each test has its own topics, Redis key prefix, consumer groups,
# database and ports, and most of their time is spent waiting on servers, not computing.
# They are handed out one at a time, longest first (tests/conftest.py, EXPECTED_SECONDS), so
# no long test starts last on one worker while the others have finished.
UNIT_TESTS := -m "not integration and not e2e" -n auto --dist loadfile --no-loadscope-reorder
STACK_TESTS := -m "(integration or e2e) and not cluster" -n 3 --dist load --maxschedchunk 1 --durations=15
CLUSTER_TESTS := -m "cluster" -n 2 --dist load --maxschedchunk 1 --durations=10

## everything: lint and type checks, the tests that need no server and the integration and
## end-to-end tests (they start the stack themselves)
## The stack tests spend most of their time waiting on servers (about 1.4 of the 2 cores
## busy), so mypy and then the tests that need no server run beside them at the lowest
## priority, on the CPU they leave; their output is printed once the stack tests are done.
test: install
	$(BIN)/ruff check .
	@beside=$$(mktemp -d); \
	  ( nice -n 19 $(BIN)/mypy > $$beside/mypy 2>&1; echo $$? > $$beside/mypy.status; \
	    nice -n 19 $(BIN)/python -m pytest $(UNIT_TESTS) $(PYTEST_ARGS) > $$beside/unit 2>&1; \
	    echo $$? > $$beside/unit.status ) & \
	  $(BIN)/python -m pytest $(STACK_TESTS) $(PYTEST_ARGS); stack=$$?; wait; \
	  echo "== mypy"; cat $$beside/mypy; echo "== the tests that need no server"; cat $$beside/unit; \
	  typed=$$(cat $$beside/mypy.status); unit=$$(cat $$beside/unit.status); rm -rf $$beside; \
	  test $$stack -eq 0 && test $$typed -eq 0 && test $$unit -eq 0

## the code-health gate: ruff (lint, import order) and mypy (types), configured in pyproject.toml
check: install
	$(BIN)/ruff check .
	$(BIN)/mypy

## the quick loop, under 2 minutes with no server running: ruff, then every test that needs
## no server (mypy, ~1 minute on its own, is `make check`)
test-fast: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(UNIT_TESTS) $(PYTEST_ARGS)

## the whole gate (ruff and mypy), then every test that needs no server
test-unit: install check
	$(BIN)/python -m pytest $(UNIT_TESTS) $(PYTEST_ARGS)

## the tests on the clustered stack (three Kafka brokers, a six-node Redis Cluster; started,
## or reused when running, beside the single-node stack), its fault scenarios included (a
## broker, a Redis primary and a worker SIGKILLed; what they kill is a private cluster's)
test-cluster: install
	$(BIN)/python -m pytest $(CLUSTER_TESTS) $(PYTEST_ARGS)

## only the tests on the real stack (started, or reused when running)
test-integration: install
	$(BIN)/python -m pytest $(STACK_TESTS) $(PYTEST_ARGS)

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
