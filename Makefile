# Every command a person runs. `make run` and `make test` work on a fresh clone with only
# Python 3.11 and make: they create .venv and install what they need first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The development environment's exact versions, each with its hashes; `make lock` writes it
# from pyproject.toml's ranges. pip itself is pinned here.
LOCK := requirements/dev.lock
PIP_VERSION := 26.3
# The indicators' C loops, loaded with ctypes (decision 0015); flags in mk/kernels.mk.
KERNELS := src/tickstep/_indicators.so
include mk/kernels.mk

.PHONY: setup run test lint format bench clean schemas lock screenshots

setup: $(STAMP)

# Everything from the lock, checked against its hashes (a missing or unhashed dependency is an
# error), then the project itself without dependencies. The kernels are order-only: rebuilt
# when indicators.c changes, without reinstalling the packages.
$(STAMP): $(LOCK) pyproject.toml | $(KERNELS)
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; set PYTHON=/path/to/python3.11+" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# A C compiler is installed with apt-get when missing, as chromium is below: as root directly,
# otherwise through `sudo -n`; without either it stops and says what to run.
$(KERNELS): src/tickstep/indicators.c mk/kernels.mk
	@command -v $(CC) >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq gcc; \
	  elif sudo -n true 2>/dev/null; then sudo -n apt-get update -qq && sudo -n apt-get install -y -qq gcc; \
	  else echo "make: no C compiler ($(CC)) for the indicator kernels and not root: run 'sudo apt-get install -y gcc'" >&2; exit 1; fi; }
	$(call build_kernels,$<,$@)

run: $(STAMP) frontend
	$(BIN)/tickstep local --candles 120 --report reports/local.json

test: $(STAMP) lint tools frontend chromium
	cd frontend && npm test --silent
	$(BIN)/python -m pytest -q -n 2

# The dashboard (frontend/): exactly package-lock.json's packages, type-checked and built to
# frontend/dist, again only when a source or the lock changed.
FRONTEND_STAMP := frontend/node_modules/.tickstep-built
FRONTEND_SOURCES := $(wildcard frontend/src/*.ts frontend/src/*.css) frontend/index.html \
	frontend/package.json frontend/package-lock.json frontend/tsconfig.json frontend/vite.config.ts

.PHONY: frontend chromium
frontend: $(FRONTEND_STAMP)

$(FRONTEND_STAMP): $(FRONTEND_SOURCES)
	@command -v npm >/dev/null || { echo "make: npm not found; install Node.js 20+" >&2; exit 1; }
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build
	touch $(FRONTEND_STAMP)

# The browser tests drive Debian's chromium (Playwright's own download cannot be fetched
# here). Installed with apt-get when missing: as root directly, otherwise through
# `sudo -n` (no password prompt); without either it stops and says what to run.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  elif sudo -n true 2>/dev/null; then sudo -n apt-get update -qq && sudo -n apt-get install -y -qq chromium; \
	  else echo "make: $(CHROMIUM) missing and not root: run 'sudo apt-get install -y chromium'" >&2; exit 1; fi; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@# Each handler is a module named app: one mypy run per function folder (and the deploy hook).
	@for app in functions/*/app.py deployment/hooks/*/app.py; do $(BIN)/mypy $$app || exit 1; done

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# The README's dashboard screenshots (docs/images/), taken by the browser test; a plain test run
# writes them to reports/screenshots/ instead.
screenshots: $(STAMP) frontend chromium
	TICKSTEP_SCREENSHOTS=docs/images $(BIN)/python -m pytest -q tests/browser/test_dashboard_local.py

schemas: $(STAMP)
	$(BIN)/tickstep schemas --out events/schemas

# `make lock` rewrites every lock: requirements/dev.lock (Python 3.11, the dev machines) from
# pyproject.toml, and each layer's requirements*.txt from its requirements*.in for the Lambda
# runtime (Python $(LAMBDA_PYTHON), x86_64) with the dev lock as constraints, so a layer ships
# exactly the versions the tests ran against. uv keeps every pin it can; to move on, e.g.
# `make lock LOCK_ARGS=--upgrade` or `make lock LOCK_ARGS='--upgrade-package numpy'`.
UV_VENV := .tools/uv
UV_STAMP := $(UV_VENV)/.installed
LOCK_ARGS ?=
DEV_PYTHON_VERSION := 3.11
COMPILE = $(UV_VENV)/bin/uv pip compile --quiet --generate-hashes --custom-compile-command 'make lock' $(LOCK_ARGS)
COMPILE_LAYER = $(COMPILE) --python-version $(LAMBDA_PYTHON) --python-platform x86_64-manylinux_2_28 -c $(LOCK)

$(UV_STAMP): tools/requirements-uv.txt
	test -x $(UV_VENV)/bin/python || $(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r tools/requirements-uv.txt
	touch $(UV_STAMP)

lock: $(UV_STAMP)
	$(COMPILE) --python-version $(DEV_PYTHON_VERSION) --python-platform x86_64-manylinux_2_28 --extra dev -o $(LOCK) pyproject.toml
	@# Developers use x86_64 and aarch64 Linux: both must need exactly the packages locked.
	$(COMPILE) --python-version $(DEV_PYTHON_VERSION) --python-platform aarch64-manylinux_2_28 --extra dev -c $(LOCK) -o $(UV_VENV)/aarch64.lock pyproject.toml
	@grep -E '^[A-Za-z0-9]' $(LOCK) | cut -d' ' -f1 > $(UV_VENV)/x86_64.pins
	@grep -E '^[A-Za-z0-9]' $(UV_VENV)/aarch64.lock | cut -d' ' -f1 > $(UV_VENV)/aarch64.pins
	@cmp -s $(UV_VENV)/x86_64.pins $(UV_VENV)/aarch64.pins || { diff $(UV_VENV)/x86_64.pins $(UV_VENV)/aarch64.pins; \
	  echo "lock: aarch64 needs other packages than x86_64; see docs/decisions/0006-dependency-locks.md" >&2; exit 1; }
	$(COMPILE_LAYER) -o layers/core/requirements.txt layers/core/requirements.in
	$(COMPILE_LAYER) -o layers/numpy/requirements.txt layers/numpy/requirements.in
	@# ccxt without its (async) dependencies; what the synchronous client needs, with theirs.
	$(COMPILE_LAYER) --no-deps -o layers/exchange/requirements.txt layers/exchange/requirements.in
	$(COMPILE_LAYER) -o layers/exchange/requirements-sync.txt layers/exchange/requirements-sync.in
	$(COMPILE) -o tools/requirements-uv.txt tools/requirements-uv.in

clean:
	rm -rf $(VENV) $(TOOLS) $(KERNELS) .pytest_cache .mypy_cache .ruff_cache .hypothesis .aws-sam \
	  frontend/node_modules frontend/dist

# The AWS side (tools, validate, build, checkov); after the targets above so `make` alone
# still means `make setup`.
include mk/aws.mk
