# The whole set-up: `make demo` and `make test` create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench results clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: a vague spec steered by a simulated expert (right 90% of the time), then meta-training
# on the result, with source-only, spec-only and the oracle trained on the same tasks for comparison.
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/gmhf run examples/specs/duffing_vague.guide --expert simulated:0.9 --rounds 30 --steps 300 \
		--meta-batch 16 --baselines --run runs/demo

# The paper's two experiments (docs/results.md): every method at six reliabilities over three seeds,
# resumable (run it again to finish what is missing); each sweep writes report.html and results.md.
results: $(STAMP)
	$(BIN)/gmhf sweep examples/specs/duffing_vague.guide --truth gmhf/domains/duffing/truth.guide --jobs 2 \
		--run runs/duffing-sweep
	$(BIN)/gmhf sweep examples/specs/duffing_vague.guide --truth gmhf/domains/duffing/truth.guide --jobs 2 \
		--generator cnode --run runs/duffing-cnode-sweep
	$(BIN)/gmhf sweep examples/specs/sinusoid_vague.guide --truth gmhf/domains/sinusoid_truth.guide --jobs 2 \
		--run runs/sinusoid-sweep

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
	$(BIN)/python bench/scenes.py
	$(BIN)/python bench/steer.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/results
