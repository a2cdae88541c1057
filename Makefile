# The README's two commands are `make demo` and `make test`; both run setup first.
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= examples/config.yml

.PHONY: setup test test-long test-fast lint typecheck check demo run check-config list-metrics bench soak clean rules rules-check am-test bundle dashboards

setup:
	@scripts/setup.sh

test: setup lint
	$(PY) -m bundle.build --check
	$(PY) -m bundle.dashboards --check
	$(PY) -m bundle.schema
	$(PY) -m bundle.check --no-promtool
	$(PY) -m pytest -q

# The detection tests with the shipped `for:` durations and 15 s intervals (about
# 30 minutes): writes docs/detection.md, the table the README quotes.
test-long: setup
	TRADEOPS_DETECTION_SPEED=shipped $(PY) -m pytest -q -s tests/detection

# Prometheus rules: rules/src/*.libsonnet + bundle/config.libsonnet -> rules/*.yml
rules: setup
	$(PY) -m bundle.build

# Grafana dashboards: dashboards/*.jsonnet + bundle/config.libsonnet ->
# dashboards/build/<uid>.json (committed; `make rules` is not needed first).
dashboards: setup
	$(PY) -m bundle.dashboards

# The committed rules match a fresh build; promtool runs every test file and the
# coverage is printed (alerts fired and not fired, recording rules evaluated).
rules-check: setup
	$(PY) -m bundle.build --check
	$(PY) -m bundle.check

# Alertmanager: amtool check-config, the routing table and every bundle alert's
# route, the inhibit rules against the bundle, template goldens, no inline secret.
am-test: setup
	$(PY) -m pytest -q tests/alertmanager

# The release archive: dist/tradeops-bundle-<rules/VERSION>.tar.gz (reproducible;
# refused while the committed rules are stale).
bundle: setup
	$(PY) -m bundle.release

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

# Every benchmark, then one table of their figures, also written into
# docs/benchmarks.md (the table the README quotes). BENCH_ARGS=--quick: small
# sizes, a check that the benches work; BENCH_ARGS="--only scale,redis": some.
BENCH_ARGS ?=
bench: setup
	$(PY) bench/run.py --doc docs/benchmarks.md $(BENCH_ARGS)

# SOAK_MINUTES (default 30) at 100k series with every target probing and /metrics
# scraped; fails when RSS grows more than 5 % after the warm-up or fds are not flat.
SOAK_MINUTES ?= 30
soak: setup
	$(PY) bench/soak.py --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info dashboards/schema/node_modules
