# Newcomers: `make demo` runs the system, `make test` runs every check. Both set everything up.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(shell pwd)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHON := $(PY)

.PHONY: help venv up down status lint fmt kustomize promtool test test-unit test-integration test-reliability soak demo bench bench-tools schemas asyncapi browser clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): pyproject.toml constraints.txt
	@echo "[setup] creating the virtualenv and installing pinned dependencies..."
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv with the pinned dependencies

browser: venv ## install Debian's Chromium for the browser test (needs root or sudo)
	@deploy/local/browser.sh

kustomize: ## what renders deploy/k8s in tests (kubectl, or kustomize built with Go)
	@deploy/local/kubectl.sh

promtool: ## install Debian's promtool for the alert-rule tests (needs root or sudo)
	@deploy/local/promtool.sh

up: venv ## start Kafka, PostgreSQL and the SMTP sink, and create the topics
	@deploy/local/stack.sh up

down: ## stop everything `make up` started
	@deploy/local/stack.sh down

status: ## what is running
	@deploy/local/stack.sh status

lint: venv ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services devtools examples tests

fmt: venv ## format and fix what ruff can
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

schemas: venv ## regenerate docs/schemas from the contracts
	$(PY) -m shared.contracts.schemas

asyncapi: venv ## regenerate docs/asyncapi (the AsyncAPI 3.0 document of the Kafka contract)
	$(PY) -m devtools.asyncapi

test-unit: venv ## fast unit tests only (no services needed)
	$(VENV)/bin/pytest tests/unit -q

test: venv browser kustomize promtool ## set everything up, lint, run every test, then stop what was started
	@set -o pipefail; rc=0; export STACK_RECORD=$(ROOT)/.local/started-by-make-test; \
	mkdir -p .local; rm -f $$STACK_RECORD; \
	deploy/local/stack.sh up || rc=$$?; \
	if [ $$rc -eq 0 ]; then $(MAKE) --no-print-directory lint || rc=$$?; fi; \
	if [ $$rc -eq 0 ]; then $(VENV)/bin/pytest tests -m 'not slow' -p no:cacheprovider --durations=15 || rc=$$?; fi; \
	deploy/local/stack.sh down; \
	if [ $$rc -eq 0 ]; then echo "make test: all checks passed"; else echo "make test: FAILED (exit $$rc)"; fi; \
	exit $$rc

test-reliability: venv ## the fault-injection suite alone (tests/reliability, slow ones included)
	@set -o pipefail; rc=0; export STACK_RECORD=$(ROOT)/.local/started-by-make-test-reliability; \
	mkdir -p .local; rm -f $$STACK_RECORD; \
	deploy/local/stack.sh up || rc=$$?; \
	if [ $$rc -eq 0 ]; then $(VENV)/bin/pytest tests/reliability -p no:cacheprovider --durations=10 || rc=$$?; fi; \
	deploy/local/stack.sh down; \
	exit $$rc

soak: venv ## half an hour of mixed load with a fault every two minutes, on a stack of its own (not in `make test`; SOAK_ARGS="--minutes 4" shortens it)
	$(PY) -m devtools.soak $(SOAK_ARGS)

demo: venv ## set everything up and run the system with the MLS feed simulator
	@$(PY) -m devtools.demo

bench-tools: ## install Debian's wrk and postfix's smtp-sink for the benchmark (needs root or sudo)
	@deploy/local/bench-tools.sh

bench: venv bench-tools ## throughput, latency and RSS of each flow beside bare loops (own broker on 9292; JSON in bench-results/)
	@deploy/local/postgres.sh start
	@$(PY) -m devtools.bench_scoring
	@$(PY) -m devtools.bench_flows

clean: down ## stop the stack and delete local state (jars cache, data, mail)
	rm -rf .local
