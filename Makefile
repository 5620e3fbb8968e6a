# One virtualenv for everything; each target installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: bench demo docs test stacks lint format clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,example]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

## demo: the example app on SQLite under gunicorn on 127.0.0.1, with its readiness report
demo: $(STAMP)
	$(PY) -m example_app.demo

## docs: the documentation site from docs/, built strictly (a broken link or anchor fails) into site/
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict -d site/

## test: the docs, then the whole suite (unit, integration with real gunicorn, ruff and mypy)
test: $(STAMP) docs
	$(PY) -m pytest

## stacks: the unit suite on the oldest and the newest supported stack (noxfile.py), each in a
## virtualenv of its own under .nox/ installed from PyPI; NOX_ARGS=-s oldest runs one
stacks: $(STAMP)
	$(VENV)/bin/nox $(NOX_ARGS)

## bench: the benchmark suite (python -m benchmarks): throughput and p99 under gunicorn and
## wrk, a cold report on PostgreSQL, the CLI's wall time, memory; BENCH_ARGS=--quick, --json F
bench: $(BENCH_STAMP)
	command -v wrk >/dev/null || (apt-get update -q && apt-get install -y -q wrk)
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -q && apt-get install -y -q --no-install-recommends postgresql)
	$(PY) -m benchmarks $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .nox .pytest_cache .mypy_cache .ruff_cache *.egg-info site
