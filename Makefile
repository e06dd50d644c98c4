# The two commands of the README. Each sets up its own environment in .venv/ on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.labkit-installed
ARGS   ?=

.PHONY: run test bench lab clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "is ignored: it is neither" || true
	@$(PY) -c "import labkit.models, papermill, pytest" && touch $(STAMP)

## run: execute every notebook headlessly (smoke profile) into runs/<timestamp>/ with a summary. ARGS="profile=full device=cuda"
run: $(STAMP)
	$(PY) -m labkit.runner $(ARGS)

## test: the whole test suite
test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

## bench: the speed benchmarks (figures and ratios, printed)
bench: $(STAMP)
	$(PY) benchmarks/metrics_speed.py
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/grl_overhead.py

## lab: JupyterLab on the notebooks
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
