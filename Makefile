# Newcomer entry points: `make demo` and `make test` (see README.md).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO ?= instance-demo
PORT ?= 5000
SBOM ?= sbom.cdx.json
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet

.PHONY: demo test lint unit sbom lock bench-zscores clean

# Every package comes pinned and hash-checked from the lock files (requirements.lock: what the
# field app runs on; requirements-dev.lock: the same pins plus the test, central and bench
# extras); the project itself is then installed without touching its dependencies.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The demo instance is built once, then served; delete the folder to rebuild (bench/demo.py times it).
# Its logins are kept beside it (demo data, demo password) and printed every time it is served.
demo: $(STAMP)
	@test -f $(DEMO)/contigo.sqlite3 || { mkdir -p $(DEMO) && \
		$(BIN)/contigo --instance $(DEMO) demo > $(DEMO)/demo-logins.txt; }
	@cat $(DEMO)/demo-logins.txt 2>/dev/null || true
	$(BIN)/contigo --instance $(DEMO) serve --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check contigo sync tests bench tools
	$(BIN)/ruff format --check contigo sync tests bench tools
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m tools.import_cycles

test: lint sbom
	$(BIN)/pytest

# CycloneDX SBOM of what the field app runs on (the runtime lock, with its hashes); git-ignored.
sbom: $(STAMP)
	$(BIN)/cyclonedx-py requirements --pyproject pyproject.toml --output-reproducible \
		--output-format JSON --output-file $(SBOM) requirements.lock
	@echo "SBOM written to $(SBOM)"

# Re-resolve the lock files after a change to pyproject.toml (keeps current pins where it can;
# `make lock UPGRADE=--upgrade` moves everything to the newest releases).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) $(UPGRADE) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --all-extras -c requirements.lock $(LOCK_FLAGS) \
		-o requirements-dev.lock

bench-zscores: $(STAMP)
	$(BIN)/python bench/zscores.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts $(SBOM)
