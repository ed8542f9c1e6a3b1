# flext-api — every target installs what it needs itself (virtualenv, extras, Debian packages).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
APT_UPDATED := /tmp/.flext-api-apt-updated

.DEFAULT_GOAL := help
.PHONY: help run run-service test lint unit bench clean redis-server etcd nginx wrk cache-tests nodejs chromium azurite

help:
	@echo "make run    the gateway demo on 127.0.0.1:8000 (examples/gateway.yaml, two upstreams)"
	@echo "make test   lint (ruff + mypy) and the whole test suite with coverage"
	@echo "make lint   ruff + mypy strict"
	@echo "make bench  run bench/*.py, append results to bench/results/, write bench/RESULTS.md"
	@echo "make cache-tests  http-cache-tests conformance of the gateway's shared cache"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The runtime set for `make run`; the dev set (below) includes it.
$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[server,redis,gateway]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.run-installed

# Debian packages: installed only when missing (as root, or through sudo when available).
define apt_install
	@if ! command -v $(1) >/dev/null 2>&1; then \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
		if [ ! -f $(APT_UPDATED) ]; then $$SUDO apt-get update -qq && touch $(APT_UPDATED); fi; \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(2) >/dev/null; \
	fi
endef

redis-server:
	$(call apt_install,redis-server,redis-server)

etcd:
	$(call apt_install,etcd,etcd-server)

nginx:
	$(call apt_install,nginx,nginx)

wrk:
	$(call apt_install,wrk,wrk)

nodejs:
	$(call apt_install,npm,nodejs npm)

# The dashboard's browser test drives Debian's chromium (never a downloaded browser).
chromium:
	$(call apt_install,chromium,chromium)

# The HTTP cache conformance suite (npm), in a git-ignored folder of the repo.
CACHE_TESTS := .npm/node_modules/http-cache-tests
$(CACHE_TESTS)/cli.mjs: | nodejs
	mkdir -p .npm
	npm install --silent --no-audit --no-fund --prefix .npm http-cache-tests@0.4.5
	touch $@

# Origin + gateway + suite; prints the score table; fails below 133 required passes.
cache-tests: $(VENV)/.dev-installed $(CACHE_TESTS)/cli.mjs
	$(BIN)/python scripts/cache_tests.py --package $(CACHE_TESTS) --min-required 133

# Azure Blob emulator for the storage tests: npm package in a git-ignored folder of the repo.
AZURITE_VERSION := 3.35.0
AZURITE := .npm/node_modules/.bin/azurite-blob

$(AZURITE): | nodejs
	mkdir -p .npm
	npm install --silent --no-audit --no-fund --prefix .npm azurite@$(AZURITE_VERSION)

azurite: $(AZURITE)

run: $(VENV)/.run-installed
	$(BIN)/python examples/gateway_demo.py

run-service: $(VENV)/.run-installed
	PORT=$(PORT) $(BIN)/python examples/service.py

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench examples scripts
	$(BIN)/ruff format --check src tests bench examples scripts
	$(BIN)/mypy

unit: $(VENV)/.dev-installed redis-server etcd chromium azurite
	$(BIN)/pytest

test: $(VENV)/.dev-installed redis-server etcd chromium azurite lint
	$(BIN)/pytest --cov=flext_api --cov-report=term-missing:skip-covered
	$(MAKE) cache-tests

bench: $(VENV)/.dev-installed redis-server nginx wrk
	@for f in bench/*.py; do \
		case $${f##*/} in _*) continue;; esac; \
		echo "== $$f"; $(BIN)/python $$f || exit 1; \
	done
	$(BIN)/python bench/_summary.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
