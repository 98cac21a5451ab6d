# run-tagger — every target creates what it needs itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Lambda's runtime is python3.13; .python-version selects it under pyenv.
PYTHON313 ?= $(shell command -v python3.13 2>/dev/null || pyenv which python3.13 2>/dev/null || echo python3.13)
STAMP := $(VENV)/.installed

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt layers/run_tagger/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --requirement requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## create .venv with the pinned dependencies

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
	$(BIN)/mypy layers/run_tagger/run_tagger functions/tag_run local tests $(wildcard benchmarks)

.PHONY: unit
unit: $(STAMP) ## unit tests only (no network)
	$(BIN)/pytest tests/unit -q

.PHONY: integration
integration: $(STAMP) ## the handler against moto's server and the Portkey stand-in on loopback
	$(BIN)/pytest tests/integration -q

.PHONY: pytest
pytest: $(STAMP)
	$(BIN)/pytest -q

.PHONY: test
test: lint typecheck pytest ## everything CI runs

.PHONY: run
run: $(STAMP) ## the whole pipeline on the embedded stack, with the samples from events/
	$(PY) -m local demo

.PHONY: schemas
schemas: $(STAMP) ## regenerate events/schemas/ from the models
	$(PY) -m run_tagger.schemas events/schemas

.PHONY: clean
clean: ## remove .venv and build output
	rm -rf $(VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache .hypothesis
