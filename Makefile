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

.PHONY: install run test test-long test-security test-scaleout lint browser eval eval-quick bench bench-store clean

install: $(STAMP)

# torch first (the CPU build that lies on this machine), then the project with its extras.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -q 'pip>=25.3'  # CVE-2023-5752, CVE-2025-8869
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

# The security battery runs in its own pytest process: it measures process memory (parser fuzzing
# under an RSS limit) and greps logs for canaries, which the models loaded by the other suites
# and their log records would distort.
test: install lint browser eval-quick
	$(VENV)/bin/pytest --ignore=tests/security
	$(VENV)/bin/pytest tests/security
	$(MAKE) test-scaleout

# The security and reliability battery (docs/security.md) alone, as in make test.
test-security: install
	$(VENV)/bin/pytest -q tests/security tests/reliability

# The slow parts of the battery: 30 min soak, 10 min of atheris per parser, 100 crash trials,
# 200 schemathesis examples per operation. Bounded by the numbers below (about 90 minutes).
SOAK_SECONDS ?= 1800
FUZZ_SECONDS ?= 600
test-long: install
	CHATBOT_TEST_LONG=1 CHATBOT_SOAK_SECONDS=$(SOAK_SECONDS) CHATBOT_FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  CHATBOT_SCHEMA_EXAMPLES=200 $(VENV)/bin/pytest -q -p no:randomly --timeout=7200 \
	  tests/security tests/reliability

# The same code against real servers: PostgreSQL (Debian's package), Milvus 2.3.5 standalone
# (.venv-milvus) and a llama.cpp server (.venv-llamacpp), all in a loopback-only network
# namespace; .ci/services.sh installs what is missing and always stops what it started.
test-scaleout: install
	bash .ci/services.sh run -- bash .ci/scaleout-tests.sh

# Debian's Chromium for the Playwright tests in tests/web (Playwright's own browser download is
# not possible here), plus CJK and emoji fonts so screenshots show Chinese text and 👍/👎.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	fc-list :lang=zh | grep -q . || (apt-get update -qq && apt-get install -y -qq fonts-wqy-zenhei fonts-noto-color-emoji)

# Dev-set evaluation (docs/evaluation.md). EVAL_MODE=answer EVAL_LIMIT=30 for answers.
EVAL_DATA  ?= ../shared/eval
EVAL_SETS  ?= covidqa cmrc2018_trial stici_trainval
EVAL_MODE  ?= retrieval
EVAL_LIMIT ?= 0
eval: install
	for set in $(EVAL_SETS); do \
	  $(VENV)/bin/chatbot eval $(EVAL_DATA)/$$set --mode $(EVAL_MODE) --limit $(EVAL_LIMIT) || exit 1; \
	done

# Regression gate on data/samples with the real embedding model (part of make test).
eval-quick: install
	$(VENV)/bin/chatbot eval data/samples --mode retrieval --baseline none --exclude-ambiguous \
	  --floors tests/evaluation/floors.json --out reports/eval-quick

bench: install
	$(PY) bench/ingest.py

# Store benchmark: embedded (LanceDB + SQLite) and Milvus + PostgreSQL at 20k and 200k chunks.
bench-store: install
	bash .ci/services.sh run -- $(PY) bench/store.py

clean:
	rm -rf $(VENV) .venv-milvus .venv-llamacpp .mypy_cache .pytest_cache .ruff_cache
