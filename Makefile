# The two commands of the README: `make run` (the app, embedded defaults) and `make test` (the whole suite).
# Both create the virtual environment and install what they need on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app "webapp:create_app_or_exit()"
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-fast lint install install-dev migrate worker scheduler sync bench clean

# On another port (make run PORT=8080) the built-in simulator follows, unless SIMULATOR_BASE_URL says otherwise.
run: install migrate
	SIMULATOR_BASE_URL="$${SIMULATOR_BASE_URL:-http://127.0.0.1:$(PORT)/simulator/v1}" \
		$(FLASK) run --host $(HOST) --port $(PORT) --with-threads --no-reload

# The browser tests drive Debian's Chromium, never a browser build downloaded by Playwright. Without root
# to install it, the tests skip themselves and say why.
CHROMIUM := /usr/bin/chromium

test: install-dev
	@test -x $(CHROMIUM) || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "make test: $(CHROMIUM) is missing and could not be installed; the browser tests will be skipped"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite without its slow tests (browser, end to end, memory, fuzzing, fault storms): for the edit-test loop.
# Four processes (pytest-xdist): most tests wait on a simulated provider rather than compute. With
# TEST_DATABASE_URL each process gets its own database (test_gw0, ...), with TEST_REDIS_URL=.../15 the Redis
# databases 15 down to 12.
test-fast: install-dev
	$(BIN)/python -m pytest -m "not slow" -n 4 $(PYTEST_ARGS)

# ruff's lint rules and formatting (pyproject.toml), and mypy on webapp/ and simulator/; CI runs it before the tests.
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: install
	$(FLASK) db upgrade

worker: install
	$(BIN)/python worker.py

scheduler: install
	$(BIN)/python worker.py scheduler

sync: install
	$(FLASK) batches sync

bench: install-dev
	@if ! command -v wrk >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk is missing (apt-get install -y wrk): the load run will be skipped"; fi; \
	fi
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
