# The two commands of the README: `make lab` and `make test`. Both set everything up first
# (Debian packages, kernel-header links for bcc, .venv) and are safe to run again.
SHELL := /bin/bash
VENV := .venv/bin
LAB ?= default
PYTEST_ARGS ?=

.PHONY: setup lab test down bench clean

setup:
	@scripts/setup-host

lab: setup
	$(VENV)/labkit up --lab $(LAB) --no-hint
	$(VENV)/labkit apply --lab $(LAB) cluster/manifests
	LABKIT_LAB=$(LAB) $(VENV)/jupyter lab --allow-root --no-browser --ip 127.0.0.1 --notebook-dir labs

test: setup
	$(VENV)/python -m pytest -q $(PYTEST_ARGS)

down:
	$(VENV)/labkit down --all

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(VENV)/python $$b || exit 1; done

clean: down
	rm -rf .venv
