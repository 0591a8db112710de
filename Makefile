# The two commands a newcomer needs: `make run` and `make test`. Each sets itself up on a fresh
# Debian/Ubuntu machine with Python 3.11+ (scripts/setup.sh is idempotent and quick when warm).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# `make run HOST=… PORT=…` (on make's command line) wins; otherwise `python -m server` takes APP_HOST/APP_PORT
# (environment or .env), else 127.0.0.1:8000. Not HOST or PORT from the environment: csh exports HOST as the
# machine's name, and some platforms set PORT for their own purposes.
given = $(if $(filter command line,$(origin $(1))),$(2) $($(1)))

.PHONY: run test setup setup-test bench golden speech sdk-types clean

run: setup
	$(PY) -m server $(call given,HOST,--host) $(call given,PORT,--port)

test: setup-test
	$(PY) -m ruff check server tests playwright bench scripts testkit examples
	$(PY) -m mypy
	node_modules/.bin/tsc -p tsconfig.json
	node_modules/.bin/tsc -p tsconfig.consumer.json
	@# The committed declarations (types/sdk/) must be what the JSDoc emits now: re-emit to a scratch directory.
	rm -rf .sdk-types-check
	node_modules/.bin/tsc -p tsconfig.sdk.json --outDir .sdk-types-check
	diff -r types/sdk .sdk-types-check || { echo "types/sdk/ is stale: run make sdk-types" >&2; exit 1; }
	rm -rf .sdk-types-check
	@# The Node tests mostly wait on timers (24 s wall, 6 s CPU): four files at a time rather than one per spare core.
	node --test --test-concurrency=4 tests/js/
	@# Two workers (pytest-xdist), tests handed out one by one (--dist load): --dist loadfile ran 3 of
	@# test_schemathesis.py's 15 (its generated tests share one node id). Plain `pytest` runs serially.
	$(PY) -m pytest -n 2 --dist load

setup:
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh app

setup-test:
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh test

bench: setup-test
	bash bench/run.sh

# Regenerate data files (never run by the tests; see tests/golden/README.md and tests/data/speech/README.md).
golden: setup-test
	$(PY) -m tests.golden.regenerate

# The SDK's type declarations from the JSDoc (committed, so the package needs no build; make test checks them).
sdk-types: setup-test
	rm -rf types/sdk
	node_modules/.bin/tsc -p tsconfig.sdk.json

speech: setup-test
	$(PY) scripts/make_speech.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
