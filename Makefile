# MOS Pipelines — `make demo` builds everything on simulated data; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export MOS_HOME ?= $(CURDIR)/.mos
export DO_NOT_TRACK := 1
export DAGSTER_DISABLE_TELEMETRY := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True

# Demo world size: override e.g. `make demo DEMO_PEOPLE=100000 DEMO_DAYS=90`.
DEMO_SEED ?= 7
DEMO_PEOPLE ?= 5000
DEMO_DAYS ?= 60
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k ingestion -x"`.
PYTEST_ARGS ?=

.PHONY: install install-spark demo test test-heavy test-spark dev browser java lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# -qq: pip prints errors only (a machine's pip config may name mirrors that do not exist: one warning each).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed  ## create .venv and install the project with its dev tools

demo: install  ## generate a simulated world, build every asset, activate behind the gates, print what was found
	$(BIN)/mos generate --seed $(DEMO_SEED) --people $(DEMO_PEOPLE) --days $(DEMO_DAYS)
	$(BIN)/mos run
	$(BIN)/mos activation run

# `make test` (what CI runs) lints beside the tests (the lint is mostly one core; the tests leave gaps) and prints the
# lint's output at the end, failing if either failed; a part of the suite (PYTEST_ARGS set) skips the lint. The heaviest
# end-to-end modules (a world or more each, 2-6 minutes of 2 cores) run in `make test-heavy`, so CI stays under
# 30 minutes; run both before a release (docs/DECISIONS.md, Testing).
# Three workers on two cores (the processes leave the cores idle part of the time), whole modules each, the longest
# first (tests/conftest.py LONGEST_FIRST; xdist's own order would start the modules with most tests first).
HEAVY_TESTS = tests/integration/test_insights_recall.py tests/integration/test_incremental_day.py \
	tests/integration/test_dagster_ui.py tests/integration/test_run_matrix_partial_landings.py \
	tests/integration/test_identity_reruns.py tests/integration/test_mmm_fit.py \
	tests/integration/test_incremental_equality.py
PYTEST = $(BIN)/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder --durations=15
LINT_LOG = $(LINT_HOME)/lint.log
test: install install-spark browser  ## lint and the test suite but the heaviest end-to-end modules (unit + integration: real DuckDB, dbt and Dagster)
ifeq ($(PYTEST_ARGS),)
	mkdir -p $(LINT_HOME)
	( $(MAKE) --no-print-directory lint > $(LINT_LOG) 2>&1; echo $$? > $(LINT_LOG).status ) & \
	$(PYTEST) $(addprefix --ignore=,$(HEAVY_TESTS)); tests=$$?; wait; \
	echo "---- make lint (ran beside the tests):"; cat $(LINT_LOG); lint=$$(cat $(LINT_LOG).status); \
	if [ "$$lint" != 0 ]; then echo "make lint failed (exit $$lint)"; fi; \
	[ "$$tests" = 0 ] && [ "$$lint" = 0 ]
else
	$(PYTEST) $(PYTEST_ARGS)
endif

test-heavy: install  ## the heaviest end-to-end modules: insights recall, a day's increment, the Dagster UI, partial landings, identity re-runs, the MMM fit, day-by-day equals a full build
	$(PYTEST) $(HEAVY_TESTS)

# The dbt project on a local Spark (issue 21; docs/SPARK.md): the `spark` extra (dbt-spark, pyspark 3.5) and Java
# 17 (`make java`). `make test` runs the whole project on Spark through Dagster, every dbt test included
# (`mos run --engine spark`), and compares every table of every schema with the DuckDB run
# (tests/integration/test_spark.py, about 7 minutes of one worker); `make test-spark` runs that, identity matching
# on Spark against DuckDB on FEBRL3, and `mos spark build` (the dbt project alone) with its marts compared.
$(VENV)/.installed-spark: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -qq --disable-pip-version-check -e '.[dev,spark]'
	touch $@

install-spark: $(VENV)/.installed-spark java  ## the `spark` extra (dbt-spark, pyspark 3.5) and Java 17

test-spark: install-spark  ## the project on a local Spark: the whole run (`mos run --engine spark`) and every table equal to the DuckDB run, identity on Spark, `mos spark build`
	MOS_TEST_SPARK=1 $(BIN)/python -m pytest tests/unit/test_spark_stage_plan.py tests/integration/test_spark.py tests/integration/test_spark_identity.py -x --durations=5
	MOS_TEST_SPARK=1 $(BIN)/python -m pytest tests/integration/test_spark_models.py -x --durations=3

# Java for Spark: Debian's OpenJDK 17, installed once (root, as on CI's machine); skipped when `java` is there.
# Without root or apt the Spark tests skip with the reason.
java:  ## Debian's OpenJDK 17 for the Spark tests (once; skipped when `java` is on PATH or JAVA_HOME is set)
	@if command -v java >/dev/null || [ -n "$$JAVA_HOME" ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else echo "make java: no java and apt-get needs root: the Spark tests will skip"; fi

dev: install  ## Dagster UI on http://127.0.0.1:3000 and the web app on http://127.0.0.1:8000 over $(MOS_HOME); Ctrl-C stops both
	$(BIN)/python -m mos_pipelines.web.dev --host 127.0.0.1 --dagster-port 3000 --port 8000

# The web app's browser tests drive Debian's Chromium through its chromedriver (tests/integration/test_web_app.py).
# Installed once (root, as on CI's machine); skipped when both binaries are there. Without root or apt, the browser
# tests skip with the reason.
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
browser:  ## Debian's chromium and chromium-driver for the web app's browser tests (once; skipped when present)
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "make browser: $(CHROMIUM) and $(CHROMEDRIVER) are missing and apt-get needs root: the browser tests will skip"; fi

# sqlfluff's dbt templater opens a warehouse: it gets a folder of its own, so it never competes with a run or the
# tests for $(MOS_HOME)'s warehouse (one writer at a time).
LINT_HOME ?= $(CURDIR)/.mos-lint

lint: install  ## ruff (lint + format check), mypy over mos_pipelines, sqlfluff over the dbt SQL (dbt templater, the vars of config/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	mkdir -p $(LINT_HOME)
	MOS_HOME=$(LINT_HOME) DBT_TARGET_PATH=$(LINT_HOME)/target $(BIN)/mos lint models tests

clean:
	rm -rf $(MOS_HOME) $(LINT_HOME) dbt_project/target dbt_project/logs
