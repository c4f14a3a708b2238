# The whole set-up: `make demo` and `make test` create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gmhf explain examples/specs/sinusoid.guide
	$(BIN)/gmhf sample examples/specs/sinusoid.guide -n 5 --seed 0
	rm -rf runs/demo-duffing
	$(BIN)/gmhf train examples/specs/duffing.guide --steps 200 --meta-batch 16 --eval-every 100 --run runs/demo-duffing

lint: $(STAMP)
	$(BIN)/ruff check gmhf tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

$(VENV)/.bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(VENV)/.bench

bench: $(VENV)/.bench
	$(BIN)/python bench/dsl.py
	$(BIN)/python bench/ode.py
	$(BIN)/python bench/cnode.py
	$(BIN)/python bench/pytest_plugin.py
	bash bench/peers/install.sh $(BIN)/python
	$(BIN)/python bench/meta.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/results
