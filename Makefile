# Set-up and everyday commands. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint bench clean chromium studies

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# after installing, compile the kernels for this machine (about a minute, once) so that no
# run waits for the compiler
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/panopticon compile
	touch $@

$(DEV_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

## run: create the virtualenv, install, run the default scenario (seed_article), then write
## its report (runs/report.html, one offline HTML file) and print the report's path
run: $(STAMP)
	$(BIN)/panopticon run
	$(BIN)/panopticon report "$$(ls -td runs/*/ | head -n 1)" --html runs/report.html

## test: install dev extras and the system packages the tests need (Debian's chromium, for
## the browser tests), then run the whole suite
test: $(DEV_STAMP) chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -q

# The browser tests drive Debian's chromium: install it through apt when it is missing and we
# are root; otherwise say exactly what to install.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "the browser tests need Debian's chromium: run 'sudo apt-get install -y chromium'" >&2; \
	    exit 1; \
	  fi; }

## studies: run every study at full scale and regenerate docs/studies/<name>.md, .html, .json
## and charts; runs go to runs/studies/. About 35 minutes on 2 CPUs (measured 2026-12-03 on
## a shared machine: mistakes 22 min, 18 runs of 1,000,000 citizens and an audited insider
## run; oversight 7 min; abroad, visitors 2 min each; positive 1 min); each page states how
## long it took
studies: $(STAMP)
	rm -rf runs/studies
	$(BIN)/panopticon study all --scale full

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks

## bench: speed against Mesa, scaling and the dashboard (minutes; not part of the tests)
bench: $(DEV_STAMP) chromium
	$(BIN)/python benchmarks/vs_mesa.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/dashboard.py

clean:
	rm -rf $(VENV) runs .pytest_cache src/*.egg-info
