# Pépite developer tasks; `make help` lists them.

UV ?= uv
UV_VERSION := 0.13.8
RUN := $(UV) run --frozen
STACK := $(RUN) python deploy/local/stack.py
SERVICES := $(RUN) python deploy/local/services.py
VENV_STAMP := .venv/.pepite-synced

export PEPITE_SHARED_DIR ?= $(abspath ../shared)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ----- set-up -----
.PHONY: install
install: $(VENV_STAMP) ## Install uv if missing and sync the workspace (one lock file)

$(VENV_STAMP): uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen --compile-bytecode
	@touch $@

# ----- the main job -----
.PHONY: demo up down status
demo: up ## Start everything, import the sample community, show what was stored and where to look
	$(RUN) python deploy/local/demo.py

up: stack-up ## Start the local stack and every service in the background (API on 127.0.0.1:8000)
	$(SERVICES) up

down: ## Stop every service and the local stack
	-$(SERVICES) down
	$(STACK) down

status: ## Show the services and the stack
	-$(SERVICES) status
	$(STACK) status

# ----- quality -----
.PHONY: test lint typecheck test-fast bench bench-quality
test: install lint typecheck ## Lint, type-check, then run every test against a real broker and MongoDB
	$(RUN) pytest

test-fast: install ## Run the tests that do not start services as processes
	$(RUN) pytest -m "not slow"

lint: install ## ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: install ## mypy (strict on libs/)
	$(RUN) mypy libs/*/src services/*/src

bench: install stack-up ## Benchmark the pipeline, 1M-message imports and API load; prints JSON lines
	$(RUN) python bench/pipeline.py
	$(RUN) python bench/imports.py
	$(RUN) python bench/llm_tokens.py
	$(RUN) python bench/api_load.py

bench-quality: install ## Score the local analyzer on the labeled sets in EVAL_DIR; prints JSON lines
	$(RUN) python bench/quality.py

.PHONY: dashboards
dashboards: install ## Rewrite the Grafana dashboards' JSON from deploy/grafana/build_dashboards.py
	$(RUN) python deploy/grafana/build_dashboards.py

# Local stack without Docker: Kafka API (Tansu), MongoDB replica set, Prometheus.
# Ports and folders: PEPITE_* variables, see deploy/local/stack.py.
.PHONY: stack-up stack-down stack-status stack-wipe
stack-up: install ## Start the local stack (installs it on first use) and wait until healthy
	$(STACK) up

stack-down: install ## Stop the local stack (MongoDB data is kept)
	$(STACK) down

stack-status: install ## Show each part of the local stack; fails if any is down
	$(STACK) status

stack-wipe: install ## Stop the local stack and delete its data
	$(STACK) down --wipe
