# Two commands for a newcomer: `make serve` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint typecheck unit bench fuzz clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/lachan serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check resolver cli.py tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy resolver cli.py

unit: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)

fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.run $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
