# The two commands of the README: `make lab` (`make lab LABKIT_LANG=ko`: the Korean edition, with
# JupyterLab in Korean) and `make test`. Both set everything up first
# (Debian packages, kernel-header links for bcc, .venv) and are safe to run again.
# For contributors (CONTRIBUTING.md): `make lint`, `make test-fast` (unit tests, no root).
SHELL := /bin/bash
VENV := .venv/bin
LAB ?= default
LABKIT_LANG ?=
PYTEST_ARGS ?=
CLASS ?= images/classroom/class-list.txt
CLASSROOM_ARGS ?=

.PHONY: setup lab classroom classroom-down test test-fast lint down bench soak clean

setup:
	@scripts/setup-host

lab: setup
	@echo "lab: [1/3] building lab $(LAB) (three nodes, about 10 s)"
	@$(VENV)/labkit up --lab $(LAB) --no-hint
	@echo "lab: [2/3] the blog's sample application (webpod x2, curl-pod, client-pod)"
	@$(VENV)/labkit apply --lab $(LAB) cluster/manifests
	@echo "lab: [3/3] JupyterLab"
	@LABKIT_LAB=$(LAB) LABKIT_LANG=$(LABKIT_LANG) scripts/jupyter-lab

# A class on this machine: JupyterHub on 127.0.0.1:8000 (CLASSROOM_ARGS="--ip ADDRESS" serves a
# room), one Linux account, notebook server and lab per student, none of them root.
classroom: setup
	$(VENV)/labkit classroom up --class $(CLASS) $(CLASSROOM_ARGS)

classroom-down:
	$(VENV)/labkit classroom down

test: setup lint
	$(VENV)/python -m pytest -q $(PYTEST_ARGS)

# Lint, format, types and the import layers (pyproject.toml configures all four).
lint:
	@test -x $(VENV)/ruff || { echo "make lint: run make setup first (it creates .venv)"; exit 2; }
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports --no-cache

# The unit tests only: no root, no lab, no browser (well under a minute).
test-fast:
	@test -x $(VENV)/python || { echo "make test-fast: run make setup first (as root: it installs packages)"; exit 2; }
	$(VENV)/python -m pytest -q -n auto -m "unit and not slow" $(PYTEST_ARGS) tests

# Only the lab `make lab` built (and its lessons' companion labs): never other people's.
down:
	$(VENV)/labkit down --lab $(LAB)

# The long run of the property-based and chaos tests (root; about ten minutes): many more
# generated bad inputs and kill rounds than `make test` runs.
soak: setup
	LABKIT_SOAK=1 $(VENV)/python -m pytest -q -p no:cacheprovider tests/test_property_input.py tests/test_chaos.py

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(VENV)/python $$b || exit 1; done

clean: down
	rm -rf .venv
