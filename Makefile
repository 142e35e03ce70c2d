# Newcomer entry points: `make demo` and `make test` (see README.md).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO ?= instance-demo

.PHONY: demo test lint unit bench-zscores clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,central,bench]'
	touch $(STAMP)

# The demo instance is built once (about half a minute), then served; delete the folder to rebuild.
demo: $(STAMP)
	@test -f $(DEMO)/contigo.sqlite3 || $(BIN)/contigo --instance $(DEMO) demo
	$(BIN)/contigo --instance $(DEMO) serve

lint: $(STAMP)
	$(BIN)/ruff check contigo sync tests bench
	$(BIN)/ruff format --check contigo sync tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench-zscores: $(STAMP)
	$(BIN)/python bench/zscores.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
