# flext-api — every target installs what it needs itself (virtualenv, extras, Debian packages).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
APT_UPDATED := /tmp/.flext-api-apt-updated

.DEFAULT_GOAL := help
.PHONY: help run test lint unit bench clean redis-server nginx azurite

help:
	@echo "make run    serve examples/service.py on 127.0.0.1:$(PORT)"
	@echo "make test   lint (ruff + mypy) and the whole test suite with coverage"
	@echo "make lint   ruff + mypy strict"
	@echo "make bench  run bench/*.py and append results to bench/results/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The runtime set for `make run`; the dev set (below) includes it.
$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[server,redis]"
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

nginx:
	$(call apt_install,nginx,nginx)

# Azure Blob emulator for the storage tests: npm package in a git-ignored folder of the repo.
AZURITE_VERSION := 3.35.0
AZURITE := .npm/node_modules/.bin/azurite-blob

$(AZURITE):
	$(call apt_install,npm,nodejs npm)
	npm install --silent --no-audit --no-fund --prefix .npm azurite@$(AZURITE_VERSION)

azurite: $(AZURITE)

run: $(VENV)/.run-installed
	PORT=$(PORT) $(BIN)/python examples/service.py

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

unit: $(VENV)/.dev-installed redis-server azurite
	$(BIN)/pytest

test: $(VENV)/.dev-installed redis-server azurite lint
	$(BIN)/pytest --cov=flext_api --cov-report=term-missing:skip-covered

bench: $(VENV)/.dev-installed redis-server nginx
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
