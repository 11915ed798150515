# The two commands of the README. Each does all set-up itself (apt packages, the venv), idempotently.
SHELL := /bin/bash
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup demo test ui bench clean stop

setup:
	@bash scripts/setup.sh
	@mkdir -p "$(DAGSTER_HOME)" && cp -f dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"

## The main job: the demo cycle on the embedded defaults.
demo: setup
	python -m speech_assets demo

## Stop the Dagster UI, daemon and ASR service the demo left running.
stop:
	python -m speech_assets stop

## The test suite (plus `dagster definitions validate`).
test: setup
	dagster definitions validate -w workspace.yaml
	python -m pytest -q

## The Dagster UI (webserver + daemon) on http://127.0.0.1:3000
ui: setup
	dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: setup
	python bench/intake_throughput.py

clean:
	rm -rf .dagster_home data
