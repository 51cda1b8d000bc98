# gpupool — see README.md. Everything installs itself: `make demo`, `make test`.
SHELL := /bin/bash
VENV ?= .venv
# PYTHON: the interpreter for a new .venv (default: e2e/pick-python.sh's choice)
PY := $(VENV)/bin/python
CACHE ?= $(HOME)/.cache/gpupool
export GPUPOOL_CACHE := $(CACHE)

.PHONY: install tools crds crds-check lint test test-unit test-gpu test-integration demo \
        cluster-up cluster-down bench-sim bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml workloads/pyproject.toml
	test -x $(PY) || { py=$${PYTHON:-$$(bash e2e/pick-python.sh)} && \
	  echo "creating $(VENV) with $$py ($$($$py --version))" && $$py -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,workloads]' -e ./workloads
	touch $@

tools:
	bash e2e/build-tools.sh

crds: install
	$(PY) -m gpupool.api.crdgen

crds-check: install
	$(PY) -m gpupool.api.crdgen --check

lint: install
	$(VENV)/bin/ruff check operator tests e2e workloads
	$(VENV)/bin/mypy

test-unit: install
	$(VENV)/bin/pytest tests/unit -q

# On a machine with an NVIDIA GPU and driver: the real NVML source, the trainer over
# NCCL and the inference server on CUDA (elsewhere these tests skip, saying why).
test-gpu: install
	$(VENV)/bin/pytest tests/unit -q -rs -m gpu

test-integration: install tools
	e2e/with-cluster.sh $(VENV)/bin/pytest tests/integration -q

# Unit tests, then integration/e2e tests against a local control plane this target
# brings up and tears down itself.
test: test-unit test-integration

demo: install tools
	e2e/with-cluster.sh $(PY) e2e/demo.py

cluster-up: install tools
	e2e/cluster.sh up

cluster-down:
	e2e/cluster.sh down

bench-sim: install
	$(PY) -m gpupool.sim.report --trace ../shared/traces/philly-dev.jobs.csv --out docs --jobs 2

bench: install
	$(VENV)/bin/gpupool-bench cycle --nodes 4000 --gpus-per-node 8 --running 30000 --pending 20000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
