# Everything a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
UV := $(PYTHON) -m uv
export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR ?= $(HOME)/.cache/uv
export HAL_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format bench bench-quick clean

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
	$(UV) run pytest -n 2  # two workers (pytest-xdist), each with its own databases

# Benchmarks against real servers on SQLite and PostgreSQL, then CSV import, erasure and search;
# each script rewrites its own section of bench/RESULTS.md and prints it: stdout carries only
# the tables, stderr one line per finished step. BENCH_ARGS goes to every script: the common
# flags (--backends, --duration, --quick, --out FILE, --baseline REV) and any script's own (a
# script ignores another's, e.g. BENCH_ARGS="--sizes 10000,100000 --duration 5 --rows 20000").
# --baseline REV measures an older commit in the same run (bench/run.py and bench/imports.py).
# `make bench-quick` (BENCH_ARGS=--quick): small sizes and short runs, a check that everything
# works (about 2 minutes of CPU time; more wall time when other work shares the 2 cores); it
# writes bench/out/RESULTS-quick.md (not committed, each section marked as quick) so it never
# replaces the full figures.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	@$(UV) run python bench/run.py $(BENCH_ARGS)
	@$(UV) run python bench/imports.py $(BENCH_ARGS)
	@$(UV) run python bench/erase.py --write $(BENCH_ARGS)
	@$(UV) run python bench/search.py $(BENCH_ARGS)

bench-quick:
	@$(MAKE) --no-print-directory bench BENCH_ARGS="--quick $(BENCH_ARGS)"

format: install
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

clean:
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache test-artifacts
