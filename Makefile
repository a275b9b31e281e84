# SIUI Access: `make up` runs the stack, `make test` runs every test. Both set up first.
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(VENV)/bin/python

export SIUI_DATABASE_URL ?= postgresql://siui:siui@127.0.0.1:5432/siui
export SIUI_DATABASE_OWNER_URL ?= postgresql://siui_owner:siui_owner@127.0.0.1:5432/siui
export SIUI_AMQP_URL ?= amqp://127.0.0.1:5672/
export SIUI_DATA_DIR ?= .siui

.PHONY: setup up up-hsm test test-unit test-integration test-e2e test-cluster test-fresh chaos bench clean

setup:
	bash deploy/setup.sh

up: setup
	exec $(PYTHON) -m deploy.run

# The same, with the OCSP responder key in a SoftHSM2 token of the data directory
# (python -m deploy.hsm init makes it once and prints the settings).
up-hsm: setup
	eval "$$($(PYTHON) -m deploy.hsm init)" && exec $(PYTHON) -m deploy.run

test: setup
	$(PYTHON) -m pytest -p no:cacheprovider tests --ignore=tests/cluster

test-unit:
	$(PYTHON) -m pytest -q tests/unit

test-integration:
	$(PYTHON) -m pytest -q tests/integration

test-e2e:
	$(PYTHON) -m pytest -q tests/e2e

# The national deployment's failures on this machine (issue 14): a three-node RabbitMQ
# cluster of the tests' own (quorum queues, a node killed mid-flow, the outbox-to-inbox
# ledger); two hosts of every API service and the OCSP responder behind HAProxy, on a
# RabbitMQ cluster and a PostgreSQL primary and standby of their own (identical answers,
# a suspension reaching each responder, the primary, a broker node, one host killed;
# ledger in test-artifacts/cluster/). About two and a half minutes, so not in `make
# test`, which has the fast failover tests (two independent nodes; a PostgreSQL primary
# and its promoted standby).
test-cluster: setup
	$(PYTHON) -m pytest -p no:cacheprovider -s tests/cluster

# `make test` on a minimal Debian 12 in its own network namespace, as a new user would
# run it (root needed; tens of minutes; never part of `make test`). See deploy/fresh/.
test-fresh:
	python3 -m deploy.fresh

# The fault suite (issue 13): its own PostgreSQL and RabbitMQ on free ports, the stack on
# them under each fault, the ledger in test-artifacts/chaos/ (~5 min). Never part of
# `make test`, which runs a short version. `make chaos SCENARIOS="kill-users poison"`
# runs some; `$(PYTHON) -m tests.chaos --list` names them.
chaos: setup
	$(PYTHON) -m tests.chaos $(SCENARIOS)

bench:
	bash deploy/setup.sh --bench
	$(PYTHON) -m bench

clean:
	rm -rf $(VENV) build *.egg-info test-artifacts
