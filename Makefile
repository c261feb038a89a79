# Everything a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
UV := $(PYTHON) -m uv
export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR ?= $(HOME)/.cache/uv
export HAL_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format bench clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@# Bytecode now: with PYTHONDONTWRITEBYTECODE set, every process would compile it again.
	@$(UV) sync --frozen --quiet --compile-bytecode

run: install
	$(UV) run hal serve --demo --host $(HOST) --port $(PORT)

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports

test: lint
	$(UV) run pytest

# Benchmarks against real servers on SQLite and PostgreSQL, then CSV import and erasure;
# each script rewrites its own section of bench/RESULTS.md.
# BENCH_ARGS="--sizes 10000,100000 --duration 5" for a shorter run; bench/imports.py and
# bench/run.py take --baseline REV to measure an older commit in the same run.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(UV) run python bench/run.py $(BENCH_ARGS)
	$(UV) run python bench/imports.py
	$(UV) run python bench/erase.py --write
	$(UV) run python bench/search.py $(BENCH_ARGS_SEARCH)

format: install
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

clean:
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache test-artifacts
