# The two README commands: `make run` (set up + serve the demo) and `make test` (set up + the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run setup fonts test test-setup bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.runtime

setup: $(VENV)/.runtime fonts

fonts:
	bash scripts/setup_fonts.sh

# the demo's market ticks (a labelled simulated random walk) so the risk book visibly moves
run: setup
	OTCDESK_LOG_FORMAT=$${OTCDESK_LOG_FORMAT:-text} OTCDESK_MARKET_TICK_S=$${OTCDESK_MARKET_TICK_S:-30} $(BIN)/otcdesk serve --demo --host $(HOST) --port $(PORT)

test-setup: $(VENV)/.test
	bash scripts/setup_test_env.sh

test: test-setup
	$(BIN)/pytest -q -rs

bench: $(VENV)/.test
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) var
