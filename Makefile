# Two commands on a fresh machine:
#   make run    set up and serve the platform on the embedded default (http://127.0.0.1:8000)
#   make test   set up and run the whole test suite against real services (what CI runs)
#   make test-fast   the fast tier only: no test marked slow, tensorflow, browser or cluster
#                    (see conftest.py), for a developer between changes
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast install install-test services browser lint migrations-check clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The in-repo plugins (plugins/*) are pip packages, installed like any third-party plugin.
PLUGINS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))

# client/ is the SDK and the `digits` command (a package of its own, without Django).
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml client/pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(PY) -m pip install --quiet -e . -e client $(foreach p,$(PLUGINS),-e $(p))
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test browser

# Static files as production serves them: hashed names, compressed, cached long.
run: export DIGITS_STATIC_MANIFEST = 1
run: install
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin --url http://$(HOST):$(PORT)/
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

# Chromium for the real-browser tests (Debian's package; browser downloads are blocked).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# PostgreSQL, Redis and RabbitMQ run on the machine; start any that stopped.
services:
	@scripts/start-services

# Four test processes (pytest-xdist) on two cores: the tests' waits (job steps, outages,
# heartbeats) left the CPU idle a fifth of the time with two and about a tenth with three
# (docs/performance.md). Each
# has its own database, broker namespace, channel prefix, bucket and folders
# (tests/settings.py); `make test XDIST=` runs in one. loadgroup:
# the tests of one xdist_group run in one process; the heaviest modules are handed out
# first (conftest.py).
XDIST ?= -n 4 --dist loadgroup
# Bytecode is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE): a
# test process's collection rewrites the asserts of every test module and compiles the
# platform's, about 7 s of CPU per process each time without the cache (__pycache__,
# ignored by git); the processes the tests start cache theirs too (tests/conftest.py).
unexport PYTHONDONTWRITEBYTECODE
test: install-test services
	$(PY) scripts/with_test_services.py $(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

FAST := not slow and not tensorflow and not browser and not cluster
test-fast: $(VENV)/.installed-test services
	$(PY) scripts/with_test_services.py $(PY) -m pytest -m "$(FAST)" $(XDIST) $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

migrations-check: install
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var staticfiles
