# The two commands of the README: `make demo` and `make test`. Both set everything up first.
VENV := .venv
BIN := $(VENV)/bin
SRC := federica tests migrations $(wildcard bench)

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
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
