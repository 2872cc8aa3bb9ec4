# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PORT   ?= 7860
export OMP_WAIT_POLICY ?= PASSIVE
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test lint eval eval-quick bench clean

install: $(STAMP)

# torch first (the CPU build that lies on this machine), then the project with its extras.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -q torch==2.13.0
	$(PIP) install --disable-pip-version-check -q -e '.[model,dev]'
	touch $(STAMP)

run: install
	$(VENV)/bin/chatbot serve --port $(PORT) --ingest-samples

lint: install
	$(VENV)/bin/ruff check chatbot ingest tests bench
	$(VENV)/bin/ruff format --check chatbot ingest tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: install lint
	$(VENV)/bin/pytest

eval: install
	$(VENV)/bin/chatbot eval ../shared/eval/covidqa --mode retrieval

bench: install
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
