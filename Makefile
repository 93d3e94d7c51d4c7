# One entry point for every task. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints.txt
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# One BLAS/OpenMP thread per process: requests run in parallel threads, and small matrix
# products slow down under thread contention (measured in docs/cues.md).
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1


.PHONY: install run worker test check lint format types train evaluate reproduce train-compact evaluate-compact reproduce-compact train-whisper evaluate-whisper ablate seeds smoke openapi lock clean bench bench-quick load load-quick audit

install: $(RUN_STAMP)  ## set up the runtime environment only (what the Docker image runs)

# Without SER_REDIS_URL, `make run` also starts the embedded Valkey (data in var/valkey/) and
# SER_EMBEDDED_WORKERS supervised workers; with it, it uses that server (start workers separately).
run: $(RUN_STAMP)  ## set up (runtime only) and serve on SER_HOST:SER_PORT (127.0.0.1:8000)
	$(BIN)/python -m service

worker: $(RUN_STAMP)  ## a batch-job worker for the queue at SER_REDIS_URL (scale out: run more)
	$(BIN)/python -m service.jobs.worker

test: $(DEV_STAMP)  ## set up (runtime + toolkit + dev) and run the whole test suite
	$(BIN)/python -m pytest

check: lint types test  ## lint, types and tests: the single check command

lint: $(DEV_STAMP)
	$(BIN)/ruff check service toolkit bench tests
	$(BIN)/ruff format --check service toolkit bench tests

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix service toolkit bench tests
	$(BIN)/ruff format service toolkit bench tests

types: $(DEV_STAMP)
	$(BIN)/mypy

# The shipped default model, ser-whisper-l2-int8: recipe, run directory (gitignored), version
# and the variants it ships (its fp32 graph is measured in the card, not shipped; the int8 one
# is as accurate and faster). docs/training.md, "Default: ser-whisper-l2-int8". Its 0.2.0 came
# from TRAIN_CONFIG=toolkit/configs/whisper_l2_noisy.toml RUN_DIR=runs/l2_noisy MODEL_VERSION=0.2.0
# (the same training; served whole), its 0.1.0 from toolkit/configs/whisper_l2.toml.
TRAIN_CONFIG ?= toolkit/configs/whisper_l2_noisy_servecrop_q90.toml
RUN_DIR ?= runs/l2_q90
MODEL_NAME ?= ser-whisper-l2
MODEL_VERSION ?= 0.3.0
MODEL_VARIANTS ?= int8
SHIPPED_MODEL_DIR ?= models/$(MODEL_NAME)-int8/$(MODEL_VERSION)
ALL_RUNS := fold0,fold1,fold2,fold3,fold4,final,cross_ravdess_to_emodb,cross_emodb_to_ravdess
# TRAIN_FLAGS=--resume keeps the runs that already finished (an interrupted `make train`).
TRAIN_FLAGS ?=

train: $(DEV_STAMP)  ## train every run on ../shared/data (1 h 37 min on one AMD EPYC core), evaluate, export the default model
	$(BIN)/python -m toolkit train --config $(TRAIN_CONFIG) --out $(RUN_DIR) --runs $(ALL_RUNS) $(TRAIN_FLAGS)
	$(MAKE) evaluate

evaluate: $(DEV_STAMP)  ## regenerate every figure, manifest and model card of the default model from the saved runs
	$(BIN)/python -m toolkit evaluate --run-dir $(RUN_DIR)
	$(BIN)/python -m toolkit export --run-dir $(RUN_DIR) --run final --name $(MODEL_NAME) --version $(MODEL_VERSION) --variants $(MODEL_VARIANTS)

reproduce: $(DEV_STAMP)  ## after `make train`: is its run `final` the shipped default model? (sha256, every head)
	$(BIN)/python -m toolkit reproduce --run-dir $(RUN_DIR) --run final --model-dir $(SHIPPED_MODEL_DIR)

# The compact model trained from scratch, ser-compact and ser-compact-int8 (the default until
# 0.2.2; docs/training.md, "Fast: ser-compact").
COMPACT_CONFIG ?= toolkit/configs/compact.toml
COMPACT_RUN_DIR ?= runs/v1
COMPACT_MODEL_VERSION ?= 0.2.2

train-compact: $(DEV_STAMP)  ## the compact recipe on every run (about 3 hours on one core), evaluated and exported
	$(BIN)/python -m toolkit train --config $(COMPACT_CONFIG) --out $(COMPACT_RUN_DIR) --runs $(ALL_RUNS) $(TRAIN_FLAGS)
	$(MAKE) evaluate-compact

evaluate-compact: $(DEV_STAMP)  ## figures of the compact runs; exports run final as ser-compact and ser-compact-int8
	$(BIN)/python -m toolkit evaluate --run-dir $(COMPACT_RUN_DIR)
	$(BIN)/python -m toolkit export --run-dir $(COMPACT_RUN_DIR) --run final --name ser-compact --version $(COMPACT_MODEL_VERSION)

reproduce-compact: $(DEV_STAMP)  ## after `make train-compact`: is its run final the shipped ser-compact?
	$(BIN)/python -m toolkit reproduce --run-dir $(COMPACT_RUN_DIR) --run final --model-dir models/ser-compact/$(COMPACT_MODEL_VERSION)

# The whole Whisper encoder with its top 2 layers fine-tuned (docs/training.md, "Fine-tuning
# the encoder"): ser-whisper-int8@0.2.0, superseded by the default and no longer in models/.
# Its 0.1.0 came from WHISPER_CONFIG=toolkit/configs/whisper_frozen.toml WHISPER_RUN_DIR=runs/whisper_cv.
WHISPER_CONFIG ?= toolkit/configs/whisper_top2.toml
WHISPER_RUN_DIR ?= runs/whisper_top2
WHISPER_MODEL_VERSION ?= 0.2.0
# 0.2.0 was trained and evaluated on every run but fold4 (docs/training.md).
WHISPER_RUNS ?= fold0,fold1,fold2,fold3,final,cross_ravdess_to_emodb,cross_emodb_to_ravdess
# Evaluated run directories compared in the backbone table of `make ablate`.
BACKBONE_RUN_DIRS ?= $(COMPACT_RUN_DIR),runs/whisper_cv,$(WHISPER_RUN_DIR),runs/whisper_l2,$(RUN_DIR)

train-whisper: $(DEV_STAMP)  ## the whole fine-tuned Whisper encoder on the same folds, evaluated and exported (about 4.5 hours on one core)
	$(BIN)/python -m toolkit train --config $(WHISPER_CONFIG) --out $(WHISPER_RUN_DIR) --runs $(WHISPER_RUNS) $(TRAIN_FLAGS)
	$(MAKE) evaluate-whisper

evaluate-whisper: $(DEV_STAMP)  ## figures of those runs; exports run final as ser-whisper-int8 (int8 only: fp32 is over 25 MiB)
	$(BIN)/python -m toolkit evaluate --run-dir $(WHISPER_RUN_DIR) --runs $(WHISPER_RUNS)
	$(BIN)/python -m toolkit export --run-dir $(WHISPER_RUN_DIR) --run final --name ser-whisper --version $(WHISPER_MODEL_VERSION) --variants int8

ablate: $(DEV_STAMP)  ## recipe ablations on fold 0 (resumable) and the backbone table -> runs/ablation/ablation.md
	$(BIN)/python -m toolkit ablate --out runs/ablation --backbones $(BACKBONE_RUN_DIRS)

seeds: $(DEV_STAMP)  ## EmoDB->RAVDESS of both Whisper recipes at seeds 0-3 (about 30 minutes; resumable) -> runs/seeds/seeds.md
	$(BIN)/python -m toolkit seeds --out runs/seeds

smoke: $(DEV_STAMP)  ## a few training steps, export and parity check
	$(BIN)/python -m toolkit smoke

bench: $(DEV_STAMP)  ## full benchmark vs the peers; writes bench/results.json and bench/RESULTS.md
	$(BIN)/python -m bench --mode full

bench-quick: $(DEV_STAMP)  ## the same in a few minutes (fewer repeats, fewer HTTP requests)
	$(BIN)/python -m bench --mode quick

load: $(DEV_STAMP)  ## load test of /predict at and above capacity, a few minutes (docs/reliability.md)
	$(BIN)/python -m bench.load

load-quick: $(DEV_STAMP)  ## the same in about a minute
	$(BIN)/python -m bench.load --quick

audit: $(DEV_STAMP)  ## known vulnerabilities in the pinned dependencies (needs the PyPI JSON API or OSV)
	$(BIN)/pip-audit --requirement $(CONSTRAINTS) --no-deps --disable-pip --progress-spinner off

openapi: $(DEV_STAMP)  ## regenerate openapi.yaml from the app
	$(BIN)/python -m service.api.export_openapi openapi.yaml

lock: $(DEV_STAMP)  ## re-pin every dependency after changing pyproject.toml
	$(BIN)/pip list --format=freeze --exclude-editable | grep -v "^ser-service" > $(CONSTRAINTS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install --constraint $(CONSTRAINTS) --editable .
	touch $@

$(DEV_STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install --constraint $(CONSTRAINTS) --editable '.[toolkit,dev]'
	touch $@ $(RUN_STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
