# Two commands set everything up on a fresh machine:  make demo  and  make test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: install install-wheel demo test test-unit mutation test-long test-py312 test-py313 test-oldest matrix-leg bench docs lint dist clean
.PHONY: test-discordpy test-disnake test-pycord library-leg

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# `make install`: an editable install (changes to the package apply at once; one test runs with
# `.venv/bin/python -P -m pytest tests/test_x.py::test_y`).  It places no copy of the templates
# in Alembic's templates/ folder (hatch_build.py), so stock `alembic init -t nxcog` and
# `alembic list_templates` do not know nxcog there, and the tests of that registration skip.
# `make install-wheel`: the wheel, as users get it (the only install that registers nxcog with
# stock Alembic); `make test`, `demo`, `test-long` and `bench` use it.  In `make test` and the
# matrix and library legs (each with its own freshly built wheel) NXALEMBIC_TEST_WHEEL=1 makes
# the suite refuse to start without an up-to-date wheel, instead of skipping those tests.
install: $(BIN)/python
	$(PIP) install -q -e ".[test,dev]"

install-wheel: $(BIN)/python
	$(PIP) install -q ".[test,dev]"
	$(PIP) install -q --no-deps --force-reinstall .

test matrix-leg library-leg: export NXALEMBIC_TEST_WHEEL := 1

# `make demo LIB=discordpy`: the discord.py bot with its settings in pyproject.toml
# (examples/discordpy_demo), migrating in its setup_hook; in a venv of its own,
# .venv-demo-discordpy, with the wheel and discord.py and no nextcord, as such a bot has it.
DEMO_VENV := .venv-demo-discordpy

ifeq ($(LIB),discordpy)
demo:
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	rm -rf build/wheel-demo
	$(DEMO_VENV)/bin/python -m pip wheel -q --no-deps -w build/wheel-demo .
	$(DEMO_VENV)/bin/python -m pip install -q "$$(ls build/wheel-demo/*.whl)[sqlite,discordpy]"
	$(DEMO_VENV)/bin/python -m pip install -q --no-deps --force-reinstall build/wheel-demo/*.whl
	$(DEMO_VENV)/bin/python examples/demo.py discordpy
else ifneq ($(filter-out nextcord,$(LIB)),)
demo:
	@echo "make demo: no demo for LIB=$(LIB); there are make demo (nextcord) and make demo LIB=discordpy" >&2; exit 2
else
demo: install-wheel
	$(BIN)/python examples/demo.py
endif

# The suite runs on TEST_WORKERS pytest-xdist workers (one per CPU by default): nearly every
# test waits on real processes and databases, and each worker starts its own throwaway
# servers.  TEST_WORKERS=0 runs it in this one process.  --dist worksteal: a worker that runs
# out of tests takes some of the other's, so a few long tests at the end do not leave a CPU idle.
TEST_WORKERS ?= auto
TEST_DIST := $(if $(filter 0,$(TEST_WORKERS)),,--dist worksteal)

test: install-wheel
	bash .ci/install-postgres.sh
	bash .ci/install-mariadb.sh
	$(BIN)/python -P -m pytest -n $(TEST_WORKERS) $(TEST_DIST) $(PYTEST_ARGS)

# -- The fast tier and mutation testing (docs/contributing.rst) ------------------------------
# tests/test_unit_*.py: the logic in-process (no subprocess), in seconds; the locking tests on a
# throwaway PostgreSQL and MariaDB (tests/servers.py; they skip with a hint without the binaries).
test-unit: install
	$(BIN)/python -P -m pytest -n 0 -q tests/test_unit_*.py $(PYTEST_ARGS)

# mutmut ([tool.mutmut] in pyproject.toml) on MUTATION_MODULES, one module after the other, with
# the fast tier only, on MUTATION_WORKERS processes (1: the machine is shared; mutants/ is started
# afresh), then the killed share per module: killed (or timed out) / every mutant but skipped ones
# ("no tests" and survivors count against it), and the share among the mutants some fast-tier test
# runs (not "no tests": code only a database server runs).  `.venv/bin/mutmut results` lists the survivors,
# `.venv/bin/mutmut show NAME` shows one.  An entry is a module, or module.x_function* for the
# functions of a bigger module (the dependency ordering in discovery, the rest of which imports
# bots; engines' preparation of an engine, moved there from locking).  One PostgreSQL and one
# MariaDB server serve every mutant (tests/servers.py runs the loop with their URLs set).
MUTATION_MODULES ?= discovery.x_dependency_order* scope rewrite headcheck settings locking engines.x_*prepare*
MUTATION_WORKERS ?= 1

mutation: install
	rm -rf mutants
	$(BIN)/python tests/servers.py sh -c 'set -e; for module in $(MUTATION_MODULES); do \
	    case "$$module" in *"*") target="$$module";; *) target="$$module.*";; esac; \
	    $(BIN)/mutmut run --max-children $(MUTATION_WORKERS) "nxalembic_templates.$$target" > /dev/null; \
	done'
	@$(BIN)/python -c "$$MUTATION_SCORE" $(MUTATION_MODULES)

define MUTATION_SCORE
import fnmatch, json, sys
from collections import Counter
from mutmut.stats import status_by_exit_code
for module in sys.argv[1:]:
    name, _, functions = module.partition(".")
    with open(f"mutants/nxalembic_templates/{name}.py.meta") as fh:
        by_key = json.load(fh)["exit_code_by_key"]
    pattern = f"nxalembic_templates.{name}.{functions or '*'}"
    codes = [code for key, code in by_key.items() if fnmatch.fnmatch(key, pattern)]
    counts = Counter(status_by_exit_code[code] for code in codes)
    tested = sum(counts.values()) - counts["skipped"] - counts["not checked"]
    killed = counts["killed"] + counts["timeout"] + counts["caught by type check"]
    share = 100 * killed / tested if tested else 0.0
    reached = tested - counts["no tests"]
    rest = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()) if status != "killed")
    print(
        f"mutation: {module:10} {killed:4}/{tested:<4} killed = {share:5.1f}%"
        f"  (of the {reached} the fast tier reaches: {100 * killed / reached if reached else 0:5.1f}%)"
        f"  {rest or 'none left'}"
    )
endef
export MUTATION_SCORE

# -- The ownership property at scale (hours: .ci/run does not run it) ------------------------
# tests/test_property_ownership.py with LONG_EXAMPLES cases on each backend (sync SQLite,
# async SQLite, PostgreSQL: 3 x 3,334 = 10,002 cases in all, about 2 hours on 2 CPUs),
# LONG_CHUNK cases per pytest process, the backends taking turns,
# one process at a time.  Chunk k runs with --hypothesis-seed=LONG_SEED+k: a failure stops the
# run and reproduces with the command printed above it.  Case folders go to LONG_TMP (tmpfs
# where there is one); one line per chunk goes to LONG_REPORT, totals to the end of the output.
LONG_EXAMPLES ?= 3334
# tests/test_differential_screen.py afterwards: generated drifts per backend (about 4 s each)
LONG_DIFFERENTIAL_EXAMPLES ?= 300
LONG_CHUNK ?= 500
LONG_SEED ?= 20261125
LONG_BACKENDS ?= sqlite_sync sqlite_async postgresql
LONG_REPORT ?= build/test-long.txt
LONG_TMP ?= $(if $(wildcard /dev/shm/.),/dev/shm,/tmp)
# First, tests/test_property_heads.py (the start-up fast path's heads against Alembic's;
# in-process, a few minutes) with LONG_HEADS_EXAMPLES cases.
LONG_HEADS_EXAMPLES ?= 10000

test-long: install-wheel
	bash .ci/install-postgres.sh
	bash .ci/install-mariadb.sh
	@mkdir -p $(dir $(LONG_REPORT)) && : > $(LONG_REPORT)
	NXALEMBIC_PROPERTY_EXAMPLES=$(LONG_HEADS_EXAMPLES) $(BIN)/python -P -m pytest -q -x -p no:cacheprovider \
	    tests/test_property_heads.py --hypothesis-seed=$(LONG_SEED) --basetemp=$(LONG_TMP)/nxalembic-test-long-heads
	@echo "test-long: $(LONG_EXAMPLES) cases on each of $(LONG_BACKENDS); machine: $$(nproc) CPUs," \
	    "$$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $$($(BIN)/python -V)" | tee -a $(LONG_REPORT)
	@set -e; done=0; chunk=0; \
	while [ $$done -lt $(LONG_EXAMPLES) ]; do \
	    chunk=$$((chunk + 1)); n=$$(( $(LONG_EXAMPLES) - done < $(LONG_CHUNK) ? $(LONG_EXAMPLES) - done : $(LONG_CHUNK) )); \
	    for backend in $(LONG_BACKENDS); do \
	        cmd="NXALEMBIC_PROPERTY_EXAMPLES=$$n $(BIN)/python -P -m pytest -q -x -p no:cacheprovider \
	            'tests/test_property_ownership.py::test_autogenerate_only_touches_owned_tables[$$backend]' \
	            --hypothesis-seed=$$(( $(LONG_SEED) + chunk )) --basetemp=$(LONG_TMP)/nxalembic-test-long-$$backend"; \
	        echo "=== chunk $$chunk, $$backend, $$(date -u +%H:%M:%S) UTC, load $$(cut -d' ' -f1-3 /proc/loadavg): $$cmd"; \
	        NXALEMBIC_PROPERTY_REPORT=$(abspath $(LONG_REPORT)) sh -c "$$cmd" \
	            || { echo "test-long: FAILED in chunk $$chunk on $$backend; reproduce with: $$cmd"; exit 1; }; \
	    done; \
	    done=$$((done + n)); \
	done
	NXALEMBIC_DIFFERENTIAL_EXAMPLES=$(LONG_DIFFERENTIAL_EXAMPLES) $(BIN)/python -P -m pytest -q -x -p no:cacheprovider \
	    tests/test_differential_screen.py --hypothesis-seed=$(LONG_SEED) --basetemp=$(LONG_TMP)/nxalembic-test-long-differential
	@awk -F'[ :=]+' '/ cases=/ { c[$$1] += $$3; f[$$1] += $$5; s[$$1] += $$7 } \
	    END { for (b in c) printf "test-long total: %s: %d cases, %d failed, %.0f s\n", b, c[b], f[b], s[b] }' \
	    $(LONG_REPORT) | sort | tee -a $(LONG_REPORT)

# -- Compatibility matrix (.ci/run runs it after `make test`) --------------------------------
# The core tests again, each leg in a venv of its own with the freshly built wheel installed:
#   test-py312:  Python 3.12 (pyenv's, else python3.12 on PATH) with nextcord 3.x;
#   test-py313:  Python 3.13 (pyenv's, else python3.13 on PATH) with nextcord 3.x (which itself
#                requires audioop-lts on 3.13, where the stdlib's audioop is gone);
#   test-oldest: the oldest alembic / SQLAlchemy / ormar / nextcord pyproject.toml claims.
# SQLite only, one driver per test (aiosqlite, the example bot's), so each leg stays short.
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python) $(shell command -v python3.12))
PYTHON313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python) $(shell command -v python3.13))
OLDEST_PINS := alembic==1.16.0 SQLAlchemy==2.0.40 ormar==0.26.0 nextcord==2.6.0
MATRIX_TESTS := tests/test_compat.py tests/test_template.py tests/test_stock_commands.py tests/test_isolation.py tests/test_cli.py tests/test_pyproject.py tests/test_scale.py
MATRIX_SELECT := not postgresql and not mysql and not mariadb and not uninstall and (aiosqlite or not sqlite or on_sqlite)
MATRIX_PYTEST_ARGS ?= -q -n $(TEST_WORKERS)

test-py312:
	@$(MAKE) --no-print-directory matrix-leg LEG=py312 LEG_PYTHON="$(PYTHON312)" LEG_PINS="nextcord>=3"

test-py313:
	@$(MAKE) --no-print-directory matrix-leg LEG=py313 LEG_PYTHON="$(PYTHON313)" LEG_PINS="nextcord>=3"

test-oldest:
	@$(MAKE) --no-print-directory matrix-leg LEG=oldest LEG_PYTHON="$(PYTHON)" LEG_PINS="$(OLDEST_PINS)"

matrix-leg:
	@test -n "$(LEG_PYTHON)" || { echo "matrix $(LEG): no interpreter found (see ls ~/.pyenv/versions)" >&2; exit 1; }
	test -x .venv-$(LEG)/bin/python || $(LEG_PYTHON) -m venv .venv-$(LEG)
	rm -rf build/wheel-$(LEG)
	.venv-$(LEG)/bin/python -m pip wheel -q --no-deps -w build/wheel-$(LEG) .
	.venv-$(LEG)/bin/python -m pip install -q "$$(ls build/wheel-$(LEG)/*.whl)[sqlite,postgresql]" pytest pytest-xdist $(foreach pin,$(LEG_PINS),'$(pin)')
	.venv-$(LEG)/bin/python -m pip install -q --no-deps --force-reinstall build/wheel-$(LEG)/*.whl
	@.venv-$(LEG)/bin/python -c 'import sys, importlib.metadata as m; print("matrix $(LEG): Python", sys.version.split()[0], *(p + " " + m.version(p) for p in ("alembic", "SQLAlchemy", "ormar", "nextcord")))'
	.venv-$(LEG)/bin/python -P -m pytest $(MATRIX_TESTS) -k "$(MATRIX_SELECT)" $(MATRIX_PYTEST_ARGS)

# -- Discord libraries (.ci/run runs them after the matrix) ---------------------------------
# tests/test_libraries.py, whose bot is the one docs/libraries.rst shows for the library, and
# tests/test_deploying_doc.py, the start-up recipes of docs/deploying.rst with that library, in
# a venv of its own with the freshly built wheel and that library's extra: no nextcord there,
# since the package needs none (and discord.py and py-cord both install `discord`).  SQLite.
LIBRARY_LEGS := discordpy disnake pycord
LIBRARY_TESTS := tests/test_libraries.py tests/test_deploying_doc.py
LIBRARY_SELECT := not postgresql
LIBRARY_OF_discordpy := discord.py
LIBRARY_OF_disnake := disnake
LIBRARY_OF_pycord := py-cord

test-discordpy test-disnake test-pycord:
	@$(MAKE) --no-print-directory library-leg LIB=$(@:test-%=%)

library-leg:
	test -x .venv-$(LIB)/bin/python || $(PYTHON) -m venv .venv-$(LIB)
	rm -rf build/wheel-$(LIB)
	.venv-$(LIB)/bin/python -m pip wheel -q --no-deps -w build/wheel-$(LIB) .
	.venv-$(LIB)/bin/python -m pip install -q "$$(ls build/wheel-$(LIB)/*.whl)[sqlite,$(LIB)]" pytest pytest-xdist
	.venv-$(LIB)/bin/python -m pip install -q --no-deps --force-reinstall build/wheel-$(LIB)/*.whl
	@.venv-$(LIB)/bin/python -c 'import sys, importlib.metadata as m; print("library $(LIB): Python", sys.version.split()[0], *(p + " " + m.version(p) for p in ("alembic", "SQLAlchemy", "ormar", "$(LIBRARY_OF_$(LIB))")))'
	NXALEMBIC_LIBRARY=$(LIBRARY_OF_$(LIB)) .venv-$(LIB)/bin/python -P -m pytest $(LIBRARY_TESTS) -k "$(LIBRARY_SELECT)" $(MATRIX_PYTEST_ARGS)

# Every benchmarks/bench_*.py, one after the other (numbers: benchmarks/RESULTS.md); among them
# bench_startup_check.py, the start-up API at head against the bot's import (issue 13).
bench: install-wheel
	set -e; for script in benchmarks/bench_*.py; do $(BIN)/python -P $$script; done

# HTML documentation; warnings are errors (tests/test_docs.py builds it too).
docs: install
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

# ruff (lint rules and formatting) and mypy --strict, the versions pinned in the dev extra;
# configuration in pyproject.toml.  mypy checks the package, the template's env.py included.
LINT_PATHS := nxalembic_templates tests benchmarks examples docs/conf.py .ci/check_dist.py hatch_build.py

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

# The sdist and the wheel in dist/, as they would be uploaded, then checked by
# .ci/check_dist.py (twine, the template and LICENSE in the wheel, a wheel built from the
# sdist identical in content).
dist: install
	rm -rf dist
	$(BIN)/python -m build --sdist --wheel --outdir dist .
	$(BIN)/python .ci/check_dist.py dist

clean:
	rm -rf $(VENV) .venv-py312 .venv-py313 .venv-oldest dist build docs/_build .pytest_cache
	rm -rf $(LIBRARY_LEGS:%=.venv-%) $(DEMO_VENV)
