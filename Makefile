# `make dev` and `make test` are all a newcomer needs; both install what they use first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest dev worker bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# lint-imports checks the architecture's contracts ([tool.importlinter] in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy .

# The console's browser test drives Debian's Chromium through Playwright; browsers are never
# downloaded (no `playwright install`). Installing it needs root, as on CI and dev containers.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

pytest: install $(CHROMIUM)
	$(BIN)/pytest

test: lint typecheck pytest

dev: install
	$(BIN)/dunning dev

worker: install
	$(BIN)/python worker.py

bench: install
	$(BIN)/python benchmarks/cases.py

clean:
	rm -rf $(VENV) .dev .mypy_cache .ruff_cache .pytest_cache
