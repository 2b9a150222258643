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
.PHONY: help system-deps venv run test test-realstack lint format bench train predict synthetic clean

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

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(MAKE) system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed ## Create .venv and install pinned dependencies

run: venv ## Start the site on the embedded defaults at http://127.0.0.1:8000
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_demo_user
	@echo "Open http://$(HOST):$(PORT)/ and log in with the demo account above."
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) ecgsite.asgi:application

test: venv ## Run the whole default test suite (SQLite, in-process queue, headless browser)
	$(PY) -m pytest

test-realstack: venv ## Run the suite against MariaDB, Redis and real worker processes (see .ci/run)
	bash .ci/run --realstack-only

lint: venv ## Check style with ruff
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: venv ## Format the code with ruff
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

train: venv ## Retrain the shipped hybrid-v1 model exactly as its model card says (about 20 min)
	$(PY) -m ml.train --data ../shared/data/khan-ecg --out ml/models --name hybrid-v1 --epochs 40 \
		--seed 42 --learning-rate 0.002 --synthetic-per-class 150 --synthetic-epochs 4

predict: venv ## Classify images: make predict IMAGES="a.jpg b.png"
	$(PY) -m ml.predict $(IMAGES)

synthetic: venv ## Write synthetic ECG printouts to var/synthetic (for demos)
	$(PY) -m ml.synthetic --out var/synthetic --per-class 10

bench: venv ## Measure upload-to-result latency, throughput and worker memory on the real stack
	bash .ci/run --services-only
	$(PY) -m bench.service
	$(PY) -m bench.service --api --batch-size 100

clean: ## Remove local run state (database, media) but keep .venv
	rm -rf var
