# caloforge: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch lies on this machine's disk; an unpinned torch would pull a CUDA build.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
DEMO_DIR ?= runs/demo
SEED ?= 1

.PHONY: demo test lint types format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip

# `make demo` installs the core and the `demo` extra (plots); `make test` the `dev` extra (all).
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[demo]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/caloforge demo --out $(DEMO_DIR) --seed $(SEED)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

# The type check of the package; its settings are [tool.mypy] in pyproject.toml.
types: $(VENV)/.installed-dev
	$(BIN)/mypy src/caloforge

# pytest exits 5 when it collects nothing: an empty run must fail, a real failure must show.
test: lint types
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

clean:
	rm -rf $(VENV) runs build dist .pytest_cache
