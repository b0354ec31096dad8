# The two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock demo test lint typecheck pytest bench clean

# Dependencies come from requirements.lock, every file checked against its hash; the
# project itself is then installed in editable mode without resolving anything again,
# which also compiles reconciliation/csrc/ into reconciliation/_speedups next to the sources.
$(STAMP): pyproject.toml requirements.lock $(wildcard reconciliation/csrc/*)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Regenerate requirements.lock after changing the dependencies in pyproject.toml
# (pip-tools in a throwaway environment; needs the package index).
lock:
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet pip-tools
	$(VENV)-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--extra test --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml
	rm -rf $(VENV)-lock

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
	rm -rf $(VENV) $(VENV)-lock .pytest_cache .mypy_cache .ruff_cache var
