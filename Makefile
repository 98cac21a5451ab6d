# run-tagger — every target creates what it needs itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Lambda's runtime is python3.13; .python-version selects it under pyenv.
PYTHON313 ?= $(shell command -v python3.13 2>/dev/null || pyenv which python3.13 2>/dev/null || echo python3.13)
STAMP := $(VENV)/.installed
# The SAM CLI and checkov pin their own boto3 and friends: each gets a venv of its own.
SAM_VENV := .tools/sam
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .tools/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# sam build's python3.13 workflow looks for python3.13 on PATH.
PYTHON313_DIR = $(shell $(PYTHON313) -c 'import os, sys; print(os.path.dirname(sys.executable))')
SAM_ENV = PATH="$(PYTHON313_DIR):$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="$${AWS_DEFAULT_REGION:-us-east-1}"

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt layers/run_tagger/requirements.txt layers/run_tagger/requirements-pure.txt pyproject.toml
	test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --requirement requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## create .venv with the pinned dependencies

$(SAM_VENV)/.installed: tools/requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --requirement tools/requirements-sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: tools/requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --requirement tools/requirements-checkov.txt
	touch $@

.PHONY: tools
tools: $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## the SAM CLI and checkov, each in a venv of its own

.PHONY: lint
lint: $(STAMP) ## ruff: lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: format
format: $(STAMP) ## ruff: fix and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: typecheck
typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy layers/run_tagger/run_tagger functions/tag_run local run_tagger_cli tests $(wildcard benchmarks)

.PHONY: unit
unit: $(STAMP) ## unit tests only (no network)
	$(BIN)/pytest tests/unit -q

.PHONY: integration
integration: $(STAMP) ## the handler against moto's server and the Portkey stand-in on loopback
	$(BIN)/pytest tests/integration -q

.PHONY: faults
faults: $(STAMP) ## the fault suite: one test per row of the failure table and per injected fault
	$(BIN)/pytest tests/faults -q

.PHONY: pytest
pytest: $(STAMP)
	$(BIN)/pytest -q

.PHONY: validate
validate: $(SAM_VENV)/.installed ## sam validate --lint
	$(SAM_ENV) $(SAM) validate --lint

.PHONY: build
build: $(SAM_VENV)/.installed ## sam build (no Docker: arm64 wheels are fetched by pip)
	$(SAM_ENV) $(SAM) build

CONFIG_ENV ?= default
STACK ?= run-tagger$(if $(filter default,$(CONFIG_ENV)),,-$(CONFIG_ENV))

.PHONY: deploy
deploy: build ## sam deploy: guided while the stack does not exist yet (STACK=…, CONFIG_ENV=dev|prod)
	@if $(SAM_ENV) $(SAM) list stack-outputs --stack-name $(STACK) >/dev/null 2>&1; then \
		$(SAM_ENV) $(SAM) deploy --config-env $(CONFIG_ENV); \
	else \
		$(SAM_ENV) $(SAM) deploy --guided --config-env $(CONFIG_ENV); \
	fi

.PHONY: checkov
checkov: $(CHECKOV_VENV)/.installed ## checkov over template.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f template.yaml

.PHONY: test
test: lint typecheck tools pytest validate build ## everything CI runs

.PHONY: run
run: $(STAMP) ## the whole pipeline on the embedded stack, with the samples from events/
	$(PY) -m local demo

.PHONY: soak
soak: $(STAMP) ## 10,000 requests through the embedded stack under injected faults; fails on any loss, duplicate or leftover (SOAK_ARGS: its options)
	$(PY) -m local.soak --requests $${SOAK_REQUESTS:-10000} $(SOAK_ARGS)

.PHONY: bench
bench: $(STAMP) ## performance figures beside their targets and peers, measured side by side (~3 min; BENCH_ARGS=--quick)
	$(PY) -m benchmarks $(BENCH_ARGS)

.PHONY: schemas
schemas: $(STAMP) ## regenerate events/schemas/ from the models
	$(PY) -m run_tagger.schemas events/schemas template.yaml

.PHONY: clean
clean: ## remove .venv, .tools, .aws-sam and caches
	rm -rf $(VENV) .tools .aws-sam .mypy_cache .pytest_cache .ruff_cache .hypothesis
