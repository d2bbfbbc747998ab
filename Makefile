# Two commands: `make run` (SQLite + demo data + the pipeline + the REST API) and `make test` (everything the tests need, then the tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_LEADS ?= 2000
API_HOST ?= 127.0.0.1
API_PORT ?= 8000
export LEADLEDGER_DB ?= sqlite:///leadledger.db

.PHONY: run test lint unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	$(BIN)/python -m compileall -q src  # editable install: our own modules too (PYTHONDONTWRITEBYTECODE may be set)
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/leadledger init
	$(BIN)/leadledger demo --leads $(DEMO_LEADS) --if-empty
	$(BIN)/leadledger sla rebuild
	$(BIN)/leadledger pipeline
	$(BIN)/leadledger demo-logins --url http://$(API_HOST):$(API_PORT)
	$(BIN)/leadledger serve --host $(API_HOST) --port $(API_PORT) --worker  # + sweeps and outbox, every 60 s

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) leadledger.db leadledger.db-wal leadledger.db-shm .pytest_cache .mypy_cache .ruff_cache
