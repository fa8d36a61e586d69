# The two commands: `make demo` and `make test`. Everything they need is installed on the way.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv infra browser up down demo test test-unit

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

test: infra browser
	$(PY) -m ruff check .
	$(PY) -m mypy
	bootstrap="$$(deploy/kafka.sh bootstrap)" && url="$$(deploy/postgres.sh url)" && \
	  KAFKA_BOOTSTRAP_SERVERS="$$bootstrap" DATABASE_URL="$$url" $(PY) -m pytest -p no:cacheprovider

test-unit: venv
	$(PY) -m pytest -p no:cacheprovider tests/unit
