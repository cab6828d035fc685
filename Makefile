# fstore_spark — `make help` lists the targets.
# A fresh machine needs only Python 3.11 and make: scripts/setup_machine.sh installs Java 17,
# Maven and redis-server (apt-get or Homebrew); every target below sets up what it needs first.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help setup jars lint test test-fast check-install demo wheel bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv==0.13.9  # uv installs the dependencies several times faster than pip
	$(BIN)/uv pip install -q --python $(PY) -c constraints.txt -e '.[dev]'
	touch $@

setup: $(STAMP)  ## install what the machine lacks (Java, Maven, redis-server), .venv, Delta JARs
	@scripts/setup_machine.sh
	@scripts/fetch_jars.sh $(PY)

jars: setup  ## fetch the Delta JARs from Maven Central into .cache/jars (once; no-op after)

lint: setup  ## ruff (lint and format) + mypy on the package
	$(BIN)/ruff check .
	$(BIN)/ruff format --check fstore_spark tests bench jobs examples notebooks scripts
	$(BIN)/mypy

# the suite runs in TEST_WORKERS processes, one test file per worker at a time (--dist loadfile:
# a file's module fixtures, such as a Spark Connect server, start once); each worker runs its
# own Spark session on local[2], so more workers than cores only adds contention
TEST_WORKERS ?= 2
test: setup lint  ## set up, lint, type-check, run the whole test suite
	@scripts/setup_machine.sh --with-browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: setup  ## the tests that need no Spark session
	$(BIN)/pytest -m 'not spark and not slow'

check-install: setup  ## install the package next to other supported pyspark/delta/mlflow versions
	scripts/check_install.sh $(PY)

demo: setup  ## the five notebooks end to end (starts a throwaway redis-server if none answers)
	scripts/demo.sh $(PY)

wheel: setup  ## build dist/fstore_spark-<version>-py3-none-any.whl (ship it to executors)
	$(BIN)/uv build --wheel --out-dir dist

bench: setup  ## benchmarks at scale S (see docs/benchmarks.md)
	$(PY) bench/run_all.py --scale S

clean:  ## remove generated data (keeps .venv and the JAR cache)
	rm -rf data spark-warehouse metastore_db .pytest_cache .mypy_cache .ruff_cache
