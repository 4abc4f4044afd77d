# Bürgerbüro — the two commands a newcomer needs: `make up` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PORT   ?= 8000
HOST   ?= 127.0.0.1
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
# e.g. make test PYTEST_ARGS=tests/deploy (scripts/check-bare-debian.sh runs a subset so)
PYTEST_ARGS ?=

.PHONY: up test lint unit integration bench clean

$(BIN)/python:
	@# Debian's python3 makes venvs only with python3-venv (ensurepip).
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || ./scripts/install-test-packages.sh python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## Start the whole system (embedded NATS, SQLite, demo district) and print where to open it.
up: $(STAMP)
	$(BIN)/buergerbuero up --host $(HOST) --port $(PORT)

## Install what the tests need and run every check and test (the media memory soak
## runs three minutes: the issue asks for minutes of an unconsumed track).
test: export MEDIA_SOAK_SECONDS ?= 180
test: $(STAMP)
	@./scripts/install-test-packages.sh
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy services
	@# PostgreSQL's tests never skip: the one at PG_URL, else a throw-away cluster of its own.
	@PG_URL=$(PG_URL) ./scripts/with-test-postgres.sh $(BIN)/python $(BIN)/pytest $(PYTEST_ARGS)
	@# Report, not fail: do the media forwarding hooks fit the newest aiortc on PyPI?
	-@./scripts/aiortc-latest-report.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/knock_admit.py
	$(BIN)/python bench/nats_sync.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
