# The two commands a fresh machine needs:  make demo   and   make test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench samples clean

$(BIN)/delegation: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

setup: $(BIN)/delegation

demo: setup
	$(BIN)/delegation demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2

lint: setup
	$(BIN)/ruff check .

samples: setup
	$(BIN)/python sample_forms/make_samples.py

bench: setup
	$(BIN)/python benchmarks/check_speed.py
	$(BIN)/python benchmarks/read_speed.py
	$(BIN)/python benchmarks/apply_speed.py

clean:
	rm -rf $(VENV) demo build *.egg-info
