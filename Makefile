# The two commands of the README. Each sets up its own environment in .venv/ on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.labkit-installed
ARGS   ?=

.PHONY: run test bench lab student browser clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "is ignored: it is neither" || true
	@$(PY) -c "import labkit.models, papermill, pytest" && touch $(STAMP)

## run: execute every notebook headlessly (smoke profile) into runs/<timestamp>/ with a summary. ARGS="profile=full device=cuda"
run: $(STAMP)
	$(PY) -m labkit.runner $(ARGS)

## test: the whole test suite (first makes sure a headless Chromium is there for the JupyterLab check)
test: $(STAMP) browser
	$(PY) -m pytest -q $(ARGS)

## browser: Debian's chromium for the JupyterLab browser test, installed where it can be (root + apt);
## elsewhere the test is skipped and says why
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	echo "[labkit] no chromium here (needs root and apt): the JupyterLab browser test will be skipped"

## student: the student notebooks (exercises stubbed) into notebooks/student/, generated from notebooks/
student: $(STAMP)
	$(PY) -m labkit.course student

## bench: the speed benchmarks (figures and ratios, printed)
bench: $(STAMP)
	$(PY) benchmarks/metrics_speed.py
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/grl_overhead.py
	$(PY) benchmarks/negatives.py
	$(PY) benchmarks/audio_frontend.py

## lab: JupyterLab on the notebooks
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
