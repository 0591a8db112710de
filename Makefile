# The two commands a newcomer needs: `make run` and `make test`. Each sets itself up on a fresh
# Debian/Ubuntu machine with Python 3.11+ (scripts/setup.sh is idempotent and quick when warm).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup setup-test lint bench golden speech emulators clean

run: setup
	$(PY) -m server --host $(HOST) --port $(PORT)

test: setup-test
	$(PY) -m ruff check server tests playwright bench scripts
	$(PY) -m mypy
	node --test tests/js/
	$(PY) -m pytest

setup:
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh app

setup-test:
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh test

bench: setup-test
	bash bench/run.sh

golden: setup-test
	$(PY) -m tests.golden.regenerate

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
