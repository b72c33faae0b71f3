# The two commands of the README: `make demo` and `make test`. Both set everything up first.
VENV := .venv
BIN := $(VENV)/bin
SRC := federica tests migrations $(wildcard bench)
# pytest worker processes for `make test` (pytest-xdist). Most of the suite's time is
# spent waiting on real processes (device servers, controllers, pollers), not on CPU, so
# more workers than CI's 2 cores still shorten it; every test makes its own databases,
# ports, directories and namespace prefix (docs/development.md). 0 runs in one process.
TEST_WORKERS ?= 4

.PHONY: setup setup-test demo test lint bench clean

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --with-postgres

demo: setup
	$(BIN)/federica demo

test: setup-test
	$(BIN)/ruff check $(SRC)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25

lint: setup
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
