# One command for each chore. `make setup` once, then `make run` / `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch installs in seconds where it lies on disk; on a GPU machine use
# `make setup TORCH=torch` (or a CUDA wheel index) to get the CUDA build.
TORCH ?= torch==2.13.0
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: setup run test test-extra test-all lint format bench bench-quick bench-app clean

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,bench]"

run:
	$(BIN)/python app.py

test:
	$(BIN)/pytest -q

# slow trainings, the browser and PostgreSQL (each skips itself when its requirement is missing)
# (pytest's exit 5, "no tests collected", is accepted here only: these markers may all skip)
test-extra:
	$(BIN)/pytest -q -m "slow or browser or postgres"; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test-all: test test-extra

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench:
	$(BIN)/python -m benchmarks.run

bench-quick:
	$(BIN)/python -m benchmarks.run --quick

bench-app:
	$(BIN)/python -m benchmarks.app_bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
