# Two entry points do all set-up on a fresh machine (Python >= 3.11 with venv):
#   make demo   synthetic raw data -> build -> validate -> stream back, for every corpus
#   make test   lint + the whole test suite (what CI runs)
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test install compat bench clean

$(BIN)/cytohub: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/cytohub

demo: install
	$(BIN)/cytohub demo all --out demo-out

# minimal venvs with the datasets releases builds must load with (kept in .venv-compat/, made once)
compat: install
	$(BIN)/python tests/compat_venvs.py

test: install compat
	$(BIN)/ruff check src builders tests benchmarks
	$(BIN)/pytest -n 2 -q

bench: install
	$(BIN)/python benchmarks/build_cccid.py

clean:
	rm -rf $(VENV) .venv-compat demo-out out build dist src/*.egg-info .pytest_cache .ruff_cache
