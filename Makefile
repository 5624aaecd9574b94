# Every target uses the project virtualenv at .venv/ (created on first use, re-synced when requirements change).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-stamp
PORT ?= 8501
# Patient data: listen on this machine only unless ADDRESS is set (e.g. ADDRESS=0.0.0.0 for a clinic network).
ADDRESS ?= localhost

.PHONY: setup run test test-fast lint bench

$(STAMP): requirements.txt requirements-dev.txt requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -c requirements.lock
	touch $(STAMP)

setup: $(STAMP)

## Dashboard on the committed default model and a local SQLite file (var/triage.db unless DATABASE_URL is set)
run: setup
	$(PY) -m streamlit run dashboard/serve.py --server.port $(PORT) --server.address $(ADDRESS)

## Lint + the whole test suite (needs ../shared beside the repo)
test: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

## Lint + the unit tests, without the slow (real model on real images) and browser (Chromium) ones
## (PYTEST_ARGS=--durations=15 shows what dominates)
test-fast: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: setup
	$(PY) -m bench.triage_speed
