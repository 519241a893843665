# Pépite developer tasks; `make help` lists them.

UV ?= uv
STACK := $(UV) run python deploy/local/stack.py

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Local stack without Docker: Kafka API (Tansu), MongoDB replica set, Prometheus.
# Ports and folders: PEPITE_* variables, see deploy/local/stack.py.
.PHONY: stack-up stack-down stack-status stack-wipe
stack-up: ## Start the local stack (installs it on first use) and wait until healthy
	$(STACK) up

stack-down: ## Stop the local stack (MongoDB data is kept)
	$(STACK) down

stack-status: ## Show each part of the local stack; fails if any is down
	$(STACK) status

stack-wipe: ## Stop the local stack and delete its data
	$(STACK) down --wipe
