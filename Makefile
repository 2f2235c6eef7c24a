# The two commands of the README: `make run` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup setup-test run test lint demo-data bench

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

run: setup
	$(BIN)/gridmap db start
	$(BIN)/gridmap db migrate
	$(BIN)/gridmap demo
	$(BIN)/gridmap serve

test: setup-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check gridmap api layers scripts tests

demo-data: setup
	$(BIN)/python scripts/make_demo.py

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python scripts/bench.py --out docs/benchmarks.md
