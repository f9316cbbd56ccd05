# PneumoWeb: `make run` brings the whole system up on embedded defaults; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export DJANGO_SETTINGS_MODULE ?= pneumoweb.settings.local
# Tests and benchmarks run against real services (CI starts them; see .ci/run).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pneumoweb
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: help venv venv-dev run web worker migrate admin demo-model lint test test-fast browser axe nginx pacs-peers services \
	bench audit-deps clean

help:
	@echo "make run    - set up and start web server + Celery worker (SQLite, no broker server needed)"
	@echo "make lint   - ruff (lint + format check), mypy and the import contracts (lint-imports)"
	@echo "make test   - make lint, then the whole test suite (PostgreSQL, Redis, a real worker, Chromium)"
	@echo "make bench  - end-to-end and model-only timings against a live server and worker"
	@echo "make audit-deps - pip-audit of requirements.txt (needs a vulnerability database: run before a release)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

migrate: venv
	$(BIN)/python manage.py migrate --noinput

admin: migrate
	$(BIN)/python manage.py ensure_admin

demo-model: migrate
	$(BIN)/python manage.py create_demo_model --if-none

# The worker runs with an embedded beat for the stuck-study reconciler; the DICOM listener (C-STORE from a PACS,
# port PNEUMO_DICOM_PORT) runs beside it. Once the web server answers, the URL and the admin login are printed again
# (the worker's and TensorFlow's start-up output would otherwise bury them); Ctrl-C stops all three.
run: migrate demo-model
	@$(BIN)/python manage.py collectstatic --noinput >/dev/null
	@login="$$($(BIN)/python manage.py ensure_admin)"; echo "$$login"; \
	echo "Starting Celery worker (queues: inference, training, pacs), DICOM listener and web server on http://127.0.0.1:$(PORT)/"; \
	set -m; $(BIN)/celery -A pneumoweb worker -B -Q inference,training,pacs --concurrency 1 --loglevel INFO \
	    --schedule var/celerybeat-schedule & worker=$$!; \
	$(BIN)/python manage.py dicom_listener & listener=$$!; \
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT) --noreload & web=$$!; \
	trap 'kill -TERM $$web $$worker $$listener 2>/dev/null; wait $$web $$worker $$listener' EXIT INT TERM; \
	for _ in $$(seq 120); do \
	  $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', $(PORT)), 1)" 2>/dev/null && break; sleep 0.5; \
	done; \
	printf '\n==============================================================================\n'; \
	echo "PneumoWeb is running: http://127.0.0.1:$(PORT)/   (admin: http://127.0.0.1:$(PORT)/admin/)"; \
	echo "$$login" | grep -v '^$$'; \
	echo "More radiologists: $(BIN)/python manage.py create_radiologist NAME.   Stop: Ctrl-C"; \
	printf '==============================================================================\n\n'; \
	wait $$web

browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; }

# Accessibility checks of the browser tests (tests/browser_support.py: axe_violations) run axe-core from npm,
# pinned, installed under var/node (not in the repository). CI has the npm registry; Debian's npm when run as root.
AXE_VERSION := 4.10.3
AXE_DIR := var/node
axe:
	@grep -qs '"version": "$(AXE_VERSION)"' $(AXE_DIR)/node_modules/axe-core/package.json || { \
	  command -v npm >/dev/null || { \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	    else echo "The accessibility tests need npm: sudo apt-get install npm"; exit 1; fi; }; \
	  mkdir -p $(AXE_DIR) && npm install --prefix $(AXE_DIR) --no-save --no-audit --no-fund \
	    axe-core@$(AXE_VERSION) >/dev/null; }

# The slowloris test runs deploy/nginx.conf in front of gunicorn with Debian's nginx (as docker-compose does).
nginx:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null \
	    && { service nginx stop >/dev/null 2>&1 || true; }; \
	  else echo "The slowloris test needs Debian's nginx: sudo apt-get install nginx"; exit 1; fi; }

# Real DICOM peers for the PACS tests (issue 9): dcmtk, Orthanc with DICOMweb and GDCM, dicom3tools. Debian starts
# a system Orthanc on 4242/8042 where it can; the tests start their own on free ports, so it is stopped here.
PACS_PEERS := dcmtk orthanc orthanc-dicomweb orthanc-gdcm dicom3tools
pacs-peers:
	@missing=""; for p in $(PACS_PEERS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	    && { service orthanc stop >/dev/null 2>&1 || true; }; \
	  else echo "The PACS tests need Debian's$$missing: sudo apt-get install$$missing"; exit 1; fi; }

services:
	@bash scripts/ensure-services.sh

# Any finding fails the build: `make test` (and so CI) runs this first.
lint: venv-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SETTINGS_MODULE=pneumoweb.settings.test $(BIN)/mypy
	$(BIN)/lint-imports

test: lint venv-dev browser axe nginx pacs-peers services
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	DJANGO_SETTINGS_MODULE=pneumoweb.settings.test \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv-dev
	DJANGO_SETTINGS_MODULE=pneumoweb.settings.test $(BIN)/python -m pytest \
	    -m "not slow and not integration and not browser and not pacs" $(PYTEST_ARGS)

bench: venv-dev services pacs-peers
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

# Known vulnerabilities of the pinned runtime dependencies (PyPI's advisory database, via pip-audit). It needs
# network access to that database: run it before every release, where the network allows. --strict: a package
# it cannot look up fails the run (without it, an unreachable database still prints "No known vulnerabilities").
audit-deps: venv-dev
	$(BIN)/pip-audit --requirement requirements.txt --strict --progress-spinner off --desc on

clean:
	rm -rf var/ .pytest_cache
