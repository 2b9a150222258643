# ecgsite task runner. `make help` lists what a developer can do.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Debian packages: mysqlclient compiles against libmariadb-dev; browser tests drive chromium.
SYSTEM_PACKAGES := libmariadb-dev pkg-config chromium

.DEFAULT_GOAL := help
.PHONY: help system-deps venv run test test-realstack lint format bench gpu-check train predict synthetic verify-models models-doc crossval load reliability-doc digitiser-doc photo-report guard-report photo-crossval photo-cards clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

system-deps: ## Install the Debian packages the venv and browser tests need (when root)
	@missing=""; for pkg in $(SYSTEM_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "Please install these system packages:$$missing"; exit 1; \
	fi

$(VENV)/.installed: requirements-base.txt requirements.txt requirements-dev.txt
	$(MAKE) system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed ## Create .venv and install pinned dependencies

run: venv ## Start the site on the embedded defaults at http://127.0.0.1:8000
	$(PY) manage.py migrate --noinput
	$(PY) manage.py register_models
	$(PY) manage.py ensure_demo_user
	@echo "Open http://$(HOST):$(PORT)/ and log in with the demo account above."
	$(PY) -m ecgsite.serve -b $(HOST) -p $(PORT) ecgsite.asgi:application

test: venv ## Run the whole default test suite (SQLite, in-process queue, headless browser)
	$(PY) -m pytest

test-realstack: venv ## Run the suite against MariaDB, Redis and real worker processes (see .ci/run)
	bash .ci/run --realstack-only

lint: venv ## Check style with ruff, and the import contracts in pyproject.toml with import-linter
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports --no-cache

format: venv ## Format the code with ruff
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

DATA ?= ../shared/data/khan-ecg
# The same budget for every architecture: 30 epochs at learning rate 0.002, seed 42.
FIT := --data $(DATA) --epochs 30 --learning-rate 0.002 --seed 42

# The shipped hybrid: MI's loss weight doubled and three seeds averaged (3x the training).
HYBRID := --mi-weight 2 --ensemble 3
# Trained on a phone photo of each training page too: twice the pages, so half the epochs keeps
# the number of steps (and the time) of FIT.
FIT_PHOTOS := --data $(DATA) --epochs 15 --learning-rate 0.002 --seed 42 --photo-augment 1
# The default hybrid (hybrid-v6): three photos of each training page, so 8 epochs over four times
# the pages take about the steps of FIT_PHOTOS (15 over twice the pages).
FIT_PHOTOS3 := --data $(DATA) --epochs 8 --learning-rate 0.002 --seed 42 --photo-augment 3

crossval: venv ## Cross-validate the four architectures on the same 5 folds into ml/reports (hours on 2 cores)
	for arch in cnn mobilenet densenet hybrid; do \
		$(PY) -m ml.crossval --arch $$arch $(FIT) --folds 5 --out ml/reports || exit 1; \
	done
	$(PY) -m ml.crossval --arch hybrid $(FIT) $(HYBRID) --folds 5 --out ml/reports --name hybrid-mi2-ens3
	$(PY) -m ml.crossval --arch hybrid $(FIT) --ensemble 3 --folds 5 --out ml/reports --name hybrid-ens3
	# Issue 13's experiment: the hybrid given the page's measurements (kept only if MI recall rises).
	$(PY) -m ml.crossval --arch hybrid_measured $(FIT) --folds 5 --out ml/reports

train: venv ## Retrain the shipped models from their cross-validation reports, as their cards say
	$(PY) -m ml.train --arch hybrid $(FIT_PHOTOS3) --out ml/models --name hybrid-v6 --val-fraction 0 \
		--crossval-report ml/reports/crossval-hybrid-photoaug3-gridbox.json --mi-operating-point
	$(PY) -m ml.train --arch hybrid $(FIT_PHOTOS) --out ml/models --name hybrid-v5 --val-fraction 0 \
		--crossval-report ml/reports/crossval-hybrid-photoaug.json --mi-operating-point
	$(PY) -m ml.train --arch hybrid $(FIT) --out ml/models --name hybrid-v4 --val-fraction 0 \
		--crossval-report ml/reports/crossval-hybrid.json --mi-operating-point
	$(PY) -m ml.train --arch hybrid $(FIT) $(HYBRID) --out ml/models --name hybrid-v3 --val-fraction 0 \
		--crossval-report ml/reports/crossval-hybrid-mi2-ens3.json
	$(PY) -m ml.train --arch hybrid $(FIT) --out ml/models --name hybrid-v2 --val-fraction 0 \
		--crossval-report ml/reports/crossval-hybrid.json
	for arch in cnn mobilenet densenet; do \
		$(PY) -m ml.train --arch $$arch $(FIT) --out ml/models --name $$arch-v1 --val-fraction 0 \
			--crossval-report ml/reports/crossval-$$arch.json || exit 1; \
	done

predict: venv ## Classify images: make predict IMAGES="a.jpg b.png"
	$(PY) -m ml.predict $(IMAGES)

synthetic: venv ## Write synthetic ECG printouts to var/synthetic (for demos)
	$(PY) -m ml.synthetic --out var/synthetic --per-class 10

verify-models: venv ## Check that ml.evaluate on the dev images reproduces every shipped model card
	$(PY) -m pytest -m devdata tests/ml/test_shipped_models.py

models-doc: venv ## Write docs/MODELS.md from the model cards and ml/reports (deterministic)
	$(PY) -m ml.report --models-dir ml/models --reports-dir ml/reports --out docs/MODELS.md

bench: venv ## The digitiser's cost beside a decode; an explanation's beside a classification; latency, throughput and worker memory on the real stack; docs/PERFORMANCE.md
	$(PY) -m bench.digitiser
	$(PY) -m bench.explain
	bash .ci/run --services-only
	$(PY) -m bench.service
	$(PY) -m bench.service --api --batch-size 100
	$(PY) -m bench.throughput --doc

# A GPU worker's install (requirements-gpu.txt: tensorflow[and-cuda]) in a venv of its own.
VENV_GPU := .venv-gpu
$(VENV_GPU)/.installed: requirements-base.txt requirements-gpu.txt
	$(MAKE) system-deps
	test -x $(VENV_GPU)/bin/python || $(PYTHON) -m venv $(VENV_GPU)
	$(VENV_GPU)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_GPU)/bin/python -m pip install --quiet -r requirements-gpu.txt
	touch $@

gpu-check: $(VENV_GPU)/.installed ## On a GPU machine: every shipped model on the GPU against the CPU, and its speed
	$(VENV_GPU)/bin/python -m bench.gpu_check

load: venv ## Load test: 50 API clients for 60 s against daphne and two workers (MariaDB, Redis)
	bash .ci/run --services-only
	$(PY) -m bench.load

digitiser-doc: venv ## Measure the digitiser (physiology on the dev images, ground truth on synthetic pages, cost); rewrite docs/DIGITISER.md
	$(PY) -m ml.digitiser_report

photo-report: venv ## Photos of every 6th dev page, as taken and straightened: guard, corners, digitiser; rewrite ml/reports/photos.json
	$(PY) -m ml.photo_report

guard-report: venv ## The guard on non-ECG images, the dev scans, their degraded copies and photos; rewrite ml/reports/guard.json
	$(PY) -m ml.guard_report --ecg-data $(DATA) --non-ecg-per-kind 100 --json --out ml/reports/guard.json > /dev/null

# The shipped hybrids' configuration, its folds, with a desk and a screen photo of every held-out page
# (about an hour on 2 cores); then the photo figures go into the cards that configuration backs.
# ml/reports/crossval-hybrid-photoaug3.json is the last run's command before ml.rectify's grid box
# correction (7c963d4); the runs above it predate it too. Each report records its command and date.
photo-crossval: venv ## Cross-validate the shipped hybrids on photos of the held-out pages; card the figures
	$(PY) -m ml.crossval --arch hybrid $(FIT) --folds 5 --out ml/reports --photos --name hybrid-photos
	$(PY) -m ml.crossval --arch hybrid $(FIT_PHOTOS) --folds 5 --out ml/reports --photos --name hybrid-photoaug
	$(PY) -m ml.crossval --arch hybrid --data $(DATA) --epochs 10 --learning-rate 0.002 --seed 42 \
		--photo-augment 2 --folds 5 --out ml/reports --photos --name hybrid-photoaug2
	$(PY) -m ml.crossval --arch hybrid $(FIT_PHOTOS3) --folds 5 --out ml/reports --photos --name hybrid-photoaug3-gridbox
	$(MAKE) photo-cards

photo-cards: venv ## Put the photo figures (the photo cross-validations, guard.json, photos.json) into the hybrid cards
	for model in hybrid-v2 hybrid-v4; do \
		$(PY) -m ml.photo_report --card $$model --crossval-report ml/reports/crossval-hybrid-photos.json || exit 1; \
	done
	$(PY) -m ml.photo_report --card hybrid-v5 --crossval-report ml/reports/crossval-hybrid-photoaug.json
	$(PY) -m ml.photo_report --card hybrid-v6 --crossval-report ml/reports/crossval-hybrid-photoaug3-gridbox.json

reliability-doc: venv ## Run the fault, bad-input, authorization, security-finding and load tests; rewrite docs/RELIABILITY.md
	bash .ci/run --services-only
	$(PY) -m bench.reliability_report

clean: ## Remove local run state (database, media) but keep .venv
	rm -rf var
