PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-postgres bench install clean fake-workspace console demo

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python main.py

console: $(STAMP)
	$(BIN)/python main.py --console

test: $(STAMP)
	$(BIN)/python -m pytest

# The same suite on a throwaway PostgreSQL server (tests/postgres_server.py starts and removes it),
# with the multi-instance tests (two bot processes on one database), which need PostgreSQL.
test-postgres: $(STAMP)
	$(BIN)/python -m tests.postgres_server -- $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

fake-workspace: $(STAMP)
	$(BIN)/python -m tests.fakes

demo: $(STAMP)
	$(BIN)/python -m tests.fakes --bot

clean:
	rm -rf $(VENV) .pytest_cache
