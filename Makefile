# xmmtools: two set-up commands, `make install` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install test bench demo clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"

test:
	$(BIN)/python -m pytest -q

bench:
	$(BIN)/python bench/bench_tables.py

demo:
	$(BIN)/xmmtools info data/sample/4xmm_dr10_ngc5139.fits

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
