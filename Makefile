# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export FEAST_USAGE ?= False
export DO_NOT_TRACK ?= 1

.PHONY: install demo test lint repro serve bench clean browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/alphaline db upgrade
	$(BIN)/alphaline demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Headless Chromium for the report tests (tests/chromium.py installs it the same way when
# missing): Debian's package, as root. Skipped when a chromium is already on PATH.
browser:
	command -v chromium >/dev/null 2>&1 || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

lint: $(STAMP)
	$(BIN)/ruff check .

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# dvc.yaml is generated from the code (alphaline/stages.py): run after changing imports or
# the params a research step reads; `make test` fails while it is stale.
.PHONY: dvc-yaml
dvc-yaml: $(STAMP)
	$(BIN)/python -m alphaline.stages

serve: $(STAMP)
	$(BIN)/alphaline serve

bench: $(STAMP)
	$(BIN)/python benches/demo_stages.py

clean:
	rm -rf state reports metrics plots data/raw data/validated data/features data/model data/quarantine
