# Two commands for a fresh machine (Python 3.11+, and Node 20 + npm for the SDK tests):
#   make run    set up .venv and serve Keyhouse on http://127.0.0.1:8000 (embedded SQLite)
#   make test   set up .venv with test tools, install the JavaScript SDKs, lint and run the suite
# Set KEYHOUSE_TEST_DATABASE_URL=postgresql+asyncpg://root@127.0.0.1:5432/test to test on PostgreSQL.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files make re-installs happen only when pyproject.toml or the npm lock file change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

tests/js/node_modules/.installed: tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.installed
	$(BIN)/keyhouse serve

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The suite on TEST_WORKERS processes (pytest-xdist; each test file stays on one of them, in its
# order), then the tests that bound a time (marker `timing`) alone, where no other test's load
# can slow them.
TEST_WORKERS ?= 2

test: lint tests/js/node_modules/.installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m 'not slow and not timing'
	$(BIN)/python -m pytest -m 'timing and not slow'

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

# The performance report (bench/results/report.md): every scenario, both databases, 1 and 2
# workers, and the sizing table of a pinned worker: about 55 minutes. wrk comes from Debian's
# packages.
bench: $(VENV)/.installed-bench
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) tests/js/node_modules
