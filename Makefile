# The two commands: `make demo` and `make test`. Everything they need is installed on the way.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv infra browser up down demo test test-unit asyncapi-parser prometheus-tools ops-checks screenshot

help:
	@echo "make demo   - install, start Kafka, PostgreSQL and the services, replay Mỹ Hào 2023"
	@echo "make test   - the whole suite (unit, integration, end-to-end) on real Kafka and PostgreSQL"
	@echo "make up / make down - start / stop everything in the background"

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

infra: venv
	deploy/kafka.sh start
	deploy/postgres.sh start

up: infra
	deploy/services.sh start

down:
	-deploy/services.sh stop
	-deploy/kafka.sh stop
	-deploy/postgres.sh stop

demo: up
	$(PY) -m scenario

# The dashboard's browser test drives Debian's Chromium (no browser download); fonts for Vietnamese.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-core >/dev/null; \
	  else echo "chromium missing: the browser test will be skipped (install it with apt-get as root)"; fi; }

# The official AsyncAPI parser (npm), in a project-local folder; install scripts are not needed.
NODE_HOME := .local/node
ASYNCAPI_PARSER := $(NODE_HOME)/node_modules/@asyncapi/parser/package.json

$(ASYNCAPI_PARSER): tools/asyncapi-parser/package.json tools/asyncapi-parser/package-lock.json
	mkdir -p $(NODE_HOME)
	cp tools/asyncapi-parser/package.json tools/asyncapi-parser/package-lock.json $(NODE_HOME)/
	npm ci --prefix $(NODE_HOME) --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

asyncapi-parser: $(ASYNCAPI_PARSER)

# promtool and prometheus from Debian's package (installed with apt-get when missing).
prometheus-tools:
	deploy/prometheus.sh install

# Alert rules (promtool), dashboards (the dashboard-linter rules) and the generated AsyncAPI.
ops-checks: venv prometheus-tools
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	$(PY) -m tools.dashboard_lint deploy/grafana/dashboards/*.json
	$(PY) -m tools.asyncapi --check

test: infra browser asyncapi-parser ops-checks
	$(PY) -m ruff check .
	$(PY) -m mypy
	bootstrap="$$(deploy/kafka.sh bootstrap)" && url="$$(deploy/postgres.sh url)" && \
	  KAFKA_BOOTSTRAP_SERVERS="$$bootstrap" DATABASE_URL="$$url" $(PY) -m pytest -p no:cacheprovider

test-unit: venv
	$(PY) -m pytest -p no:cacheprovider tests/unit

# docs/dashboard.png: the dashboard's browser test (Mỹ Hào 2023 through the services) writes it.
screenshot: infra browser
	bootstrap="$$(deploy/kafka.sh bootstrap)" && url="$$(deploy/postgres.sh url)" && \
	  KAFKA_BOOTSTRAP_SERVERS="$$bootstrap" DATABASE_URL="$$url" DASHBOARD_SCREENSHOT=docs/dashboard.png \
	  $(PY) -m pytest -p no:cacheprovider tests/e2e/test_my_hao.py -k test_dashboard_shows_the_figures_and_changes_live
