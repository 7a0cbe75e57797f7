# FirmPay: `make dev` runs the whole thing locally, `make test` runs every check.
.DEFAULT_GOAL := help
PY := .venv/bin/python
export SAM_CLI_TELEMETRY := 0

.PHONY: help setup dev test test-live lint typecheck template unit integration e2e bench load invoke replay-dlq openapi build clean

help:
	@echo "make dev     start the local stack on 127.0.0.1:3000, seed demo firms, print pay links"
	@echo "make test    lint, types, template checks, unit, integration and browser tests"
	@echo "make test-live   the payment scenarios against Stripe test mode and Plaid sandbox (needs their keys)"
	@echo "make bench   cold-start and DynamoDB-request figures per function"
	@echo "make load    60 s of clients, firms and webhooks on a local stack, then the money checks (ARGS=\"--seconds 10\")"
	@echo "make invoke FN=<function> EVENT=events/<file>.json   run one handler against the local stack"
	@echo "make replay-dlq   resend the confirmation emails of the email dead-letter queue (ARGS=\"--aws --queue-url URL\" for AWS)"

setup:
	@scripts/bootstrap.sh

dev: setup
	$(PY) -m local.dev

test: setup
	@scripts/test.sh

test-live: setup
	@scripts/test_live.sh

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: setup
	.venv/bin/mypy layers/firmpay/firmpay functions

template: setup
	@scripts/check_template.sh

unit: setup
	$(PY) -m pytest tests/unit -q

integration: setup
	$(PY) -m pytest tests/integration -q

e2e: setup
	$(PY) -m pytest tests/e2e -q

bench: setup
	$(PY) -m bench.run

load: setup
	$(PY) -m bench.load $(ARGS)

invoke: setup
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=events/<file>.json"; exit 2; }
	$(PY) -m local.invoke $(FN) $(EVENT)

replay-dlq: setup
	$(PY) -m local.replay_dlq $(ARGS)

openapi: setup
	$(PY) -m local.openapi --write

build: setup
	.sam-venv/bin/sam build --template-file template.yaml --build-dir .aws-sam/build

clean:
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
