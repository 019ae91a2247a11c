# The two commands: `make run` (the whole local stack, seeded) and `make test` (every test).
# Both bootstrap a fresh machine: .venv with the pinned Python packages, Azurite from npm.
# Later runs reuse the installs; a changed requirements file or lockfile reinstalls.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test bench install browser lint typecheck clean

run: install
	$(PY) -m devtools.stack

test: install browser
	$(PY) -m pytest $(PYTEST_ARGS)

# Every benchmark against the local stack (own ports): bench/results/latest.json and a table.
# BENCH_ARGS=--quick for smaller sizes; BENCH_ARGS="intake latency" for some of them.
BENCH_ARGS ?=
bench: install
	$(PY) -m bench $(BENCH_ARGS)

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`: it downloads).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

install: $(VENV)/.installed node_modules/.installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip check
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) node_modules .run .pytest_cache .mypy_cache .ruff_cache
