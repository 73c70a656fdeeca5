# Two commands set everything up on a fresh machine:  make demo  and  make test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: install demo test bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The package is installed from its wheel (never editable): only the wheel registers the
# nxcog template with stock Alembic, and that is what users get.
install: $(BIN)/python
	$(PIP) install -q ".[test]"
	$(PIP) install -q --no-deps --force-reinstall .

demo: install
	$(BIN)/python examples/demo.py

test: install
	bash .ci/install-postgres.sh
	$(BIN)/python -P -m pytest $(PYTEST_ARGS)

# Every benchmarks/bench_*.py, one after the other (numbers: benchmarks/RESULTS.md).
bench: install
	set -e; for script in benchmarks/bench_*.py; do $(BIN)/python -P $$script; done

# HTML documentation; warnings are errors (tests/test_docs.py builds it too).
docs: install
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) dist build docs/_build .pytest_cache
