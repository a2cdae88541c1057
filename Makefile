# The README's two commands are `make demo` and `make test`; both run setup first.
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= examples/config.yml

.PHONY: setup test test-fast lint typecheck check demo run check-config list-metrics bench clean

setup:
	@scripts/setup.sh

test: setup lint
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -x

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

demo: setup
	$(PY) -m stack demo

run: setup
	$(PY) -m exporter --config $(CONFIG)

check-config: setup
	$(PY) -m exporter --config $(CONFIG) --check-config

list-metrics: setup
	@$(PY) -m exporter --list-metrics

bench: setup
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
