# Newcomer entry points: `make demo` and `make test` (see README.md).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit bench-zscores clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,central,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/contigo zscore ../shared/reference/who_growth_reference_dev.csv demo-zscores.csv
	@echo "Scored the WHO reference sample into demo-zscores.csv"

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
