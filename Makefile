# README's two commands: `make serve` and `make test`. Both build .venv from
# uv.lock first (exact pinned versions), so a fresh machine needs nothing else.
PY ?= python3
UV_VERSION := 0.13.8
UV := $(PY) -m uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
# .pyc files written at install: a worker then starts in ~2 s instead of ~8 s, also
# where PYTHONDONTWRITEBYTECODE is set (measured at cold start).
export UV_COMPILE_BYTECODE := 1

.PHONY: serve test lint typecheck pytest system-deps bench bench-smoke clean

ENSURE_UV := $(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install --quiet "uv==$(UV_VERSION)"

# Two stamps: serving needs only the runtime dependencies (--no-dev); tests, lint and
# the benchmark need the dev group too. --inexact: a `make serve` after `make test`
# keeps the dev tools instead of uninstalling them (the dev sync is exact).
$(VENV)/.synced-runtime: uv.lock pyproject.toml
	@$(ENSURE_UV)
	$(UV) sync --frozen --no-dev --inexact
	@touch $@

$(VENV)/.synced-dev: uv.lock pyproject.toml
	@$(ENSURE_UV)
	$(UV) sync --frozen
	@touch $@ $(VENV)/.synced-runtime

serve: $(VENV)/.synced-runtime
	$(VENV)/bin/userservice serve

system-deps:
	@bash scripts/system-deps.sh

lint: $(VENV)/.synced-dev
	$(VENV)/bin/ruff check userservice tests migrations scripts bench
	$(VENV)/bin/ruff format --check userservice tests migrations scripts bench

typecheck: $(VENV)/.synced-dev
	$(VENV)/bin/mypy userservice

pytest: $(VENV)/.synced-dev system-deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The performance benchmark (loopback only, bounded in time; bench/README.md): results.json,
# results.md and results.png in bench/results/. Full: ~35 min, on a quiet machine.
bench: $(VENV)/.synced-dev system-deps
	$(VENV)/bin/python -m bench.run

# Every scenario kind on tiny data (~2 min); tests/bench runs the same.
bench-smoke: $(VENV)/.synced-dev system-deps
	$(VENV)/bin/python -m bench.run --smoke

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
