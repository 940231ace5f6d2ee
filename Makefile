# xmmtools: two set-up commands, `make install` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install test test-fast lint format bench demo docs-figures models clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,scale,lint]"

test:
	$(BIN)/python -m pytest -q

# The quick loop: everything but the slow end-to-end CLI runs.
test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

# Quality gate (CI runs it): lint, formatting, types.
lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format:
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench:
	$(BIN)/python bench/bench_tables.py

# Rebuild the shipped default models from shipped real data (reproducible; tests check it).
models:
	$(BIN)/xmmtools classify train tests/data/classify/lin2024_4xmmdr13_xclass_train.csv --label-column Class \
		--merge STAR=LM-STAR+HM-STAR --merge OTHER=CV+HMXB+LMXB+NS+NS_BIN --features xclass \
		--priors AGN=0.66,STAR=0.25,OTHER=0.09 --outlier-false-flag-rate 0.02 --check-distances AGN \
		-o src/xmmtools/data/models/classify/default.json --overwrite
	$(BIN)/python -m xmmtools.photoz.defaults

# The release demo: every stage on shipped real data, then the HTML report (build/demo/report/).
# A second run skips every stage (content-based, see docs/pipeline.md).
demo:
	$(BIN)/xmmtools run examples/release.toml
	@echo "report: build/demo/report/index.html"

# The figures of docs/ and the README, remade from shipped data (the report picture needs
# headless Chromium: apt-get install chromium).
docs-figures: demo
	$(BIN)/python docs/figures/classify_outliers.py
	$(BIN)/python docs/figures/report_demo.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
