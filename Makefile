# palavra: `make quickstart` trains on public Portuguese text and serves it; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install quickstart test test-fast lint serve

# pytest runs in this many processes (pytest-xdist), each test file in one of them; 0 runs it in this process
PYTEST_PROCESSES ?= 2
ifeq ($(PYTEST_PROCESSES),0)
XDIST :=
else
XDIST := -n $(PYTEST_PROCESSES) --dist loadfile
endif

$(BIN)/palavra: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/palavra

install: $(BIN)/palavra

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy models pipelines

# the suite starts many palavra processes (servers, workers, the CLI): compiled once here, each reads the bytecode
# instead of compiling the sources again (PYTHONDONTWRITEBYTECODE keeps Python from caching it itself)
BYTECODE := $(BIN)/python -m compileall -q models pipelines services
# pytest rewrites the asserts of the test modules and of its plugins' packages (hypothesis, schemathesis, anyio:
# ~280 modules) in every pytest process; it keeps the result only where Python may write bytecode
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/pytest

test: lint
	$(BYTECODE)
	$(PYTEST) -m "slow or services or not slow" $(XDIST) $(PYTEST_ARGS)

# the tests that need neither the data mirror nor PostgreSQL/Redis: a quick check while editing
test-fast: install
	$(BYTECODE)
	$(PYTEST) -m "not slow and not services" $(XDIST) $(PYTEST_ARGS)

quickstart: install
	PORT=$(PORT) bash scripts/quickstart.sh
