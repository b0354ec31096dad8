# The two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/atm-service demo

lint: $(STAMP)
	$(BIN)/ruff check atm_service device_agent reconciliation lockctl simulators cashplan tests bench
	$(BIN)/ruff format --check atm_service device_agent reconciliation lockctl simulators cashplan tests bench

typecheck: $(STAMP)
	$(BIN)/mypy atm_service device_agent reconciliation lockctl simulators cashplan

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(STAMP)
	@for script in $(wildcard bench/*.py); do echo "# $$script" >&2; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
