# The two commands: `make run` (set up and serve) and `make test` (set up and run the suite).
# Both create .venv with a Python >= 3.12 (Django 6 needs it) and install the pinned requirements.

PORT ?= 8000
HOST ?= 127.0.0.1
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

# First Python >= 3.12 found: $PYTHON, python3.14..3.12 on PATH, python3, then pyenv installs.
FIND_PYTHON = for candidate in $(PYTHON) python3.14 python3.13 python3.12 python3 \
	  $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 /root/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
	  if command -v $$candidate >/dev/null 2>&1 && $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	    command -v $$candidate; exit 0; fi; done; \
	  echo "No Python >= 3.12 found (Django 6 needs it). Install one, or set PYTHON=/path/to/python3.12." >&2; exit 1

# System packages `make run` and `make test` need, as PACKAGE:COMMAND (present when COMMAND is on
# PATH; a bare PACKAGE is checked with dpkg). Missing ones are installed with apt-get as root, else
# the command stops and says what to install. bubblewrap isolates learner code (JavaScript, and
# Python when not root); Node.js runs JavaScript submissions and checks JavaScript references;
# GNU time (`time`: a bare package, the shell has a `time` keyword) measures a run's peak memory
# from outside the sandbox; libseccomp2 builds every sandbox's seccomp filter (through pyseccomp).
SYSTEM_PACKAGES := bubblewrap:bwrap nodejs:node time libseccomp2

# What CI needs besides: promtool checks and unit-tests the Prometheus alert rules
# (tests/co_project/test_alert_rules.py). Debian ships it only inside the full `prometheus`
# package, whose server (and, by its recommends, node exporter) a systemd machine would start,
# so `make test` does not install it on a workstation: `.ci/run` runs `make ci-system-packages`;
# elsewhere those tests skip and name the package (under CI=true they fail instead).
# Debian's chromium is the browser the learner pages' end-to-end tests drive (tests/e2e/, with
# Playwright; never `playwright install`, which downloads a browser). Without it those tests skip
# on a workstation and fail under CI=true.
CI_SYSTEM_PACKAGES := prometheus:promtool chromium:chromium

# A virtualenv from requirements.txt alone, rebuilt from scratch when it changes: what production
# installs, so the smoke test (deploy/smoke.py) finds a missing runtime dependency.
PROD_VENV := var/prod-venv

.PHONY: run test lint format install install-dev system-packages ci-system-packages prod-venv token worker beat clean assets

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $$($(FIND_PYTHON)) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

system-packages:
	@scripts/system-packages "make $(or $(MAKECMDGOALS),system-packages)" $(SYSTEM_PACKAGES)

ci-system-packages:
	@scripts/system-packages "make ci-system-packages" $(SYSTEM_PACKAGES) $(CI_SYSTEM_PACKAGES)

$(PROD_VENV)/.installed: requirements.txt
	@echo "building $(PROD_VENV) from requirements.txt alone"
	@rm -rf $(PROD_VENV)
	@$$($(FIND_PYTHON)) -m venv $(PROD_VENV)
	$(PROD_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

prod-venv: $(PROD_VENV)/.installed

# Local development: SQLite, eager Celery, local-memory cache, dev signing keys under var/.
run: system-packages install
	@mkdir -p var
	@test -f .env || printf '# Written by `make run` for local development; production sets real variables instead.\nCO_ENV=development\n' > .env
	$(PY) manage.py migrate --no-input
	$(PY) manage.py create_dev_keys
	$(PY) manage.py seed
	@echo
	@echo "  Learner  http://$(HOST):$(PORT)/learn/   (sign in with any learner name)"
	@echo "  API      http://$(HOST):$(PORT)/v1/tracks"
	@echo "  Docs     http://$(HOST):$(PORT)/docs   (OpenAPI: /v1/schema)"
	@echo "  Admin    http://$(HOST):$(PORT)/admin  (create a user: $(PY) manage.py createsuperuser)"
	@echo "  Health   http://$(HOST):$(PORT)/health"
	@echo "  Dev token for learner 'dev-learner' (valid 24 h):"
	@echo
	@echo "export T=$$($(PY) manage.py issue_token --sub dev-learner --ttl 86400)"
	@echo
	@echo "  curl -H \"Authorization: Bearer \$$T\" http://$(HOST):$(PORT)/v1/tracks"
	@echo
	exec $(VENV)/bin/uvicorn co_project.asgi:application --host $(HOST) --port $(PORT) --lifespan off

# Rebuild the learner pages' vendored editor (CodeMirror 6, Python + JavaScript) and the test-only
# axe-core copy from assets/package-lock.json. Only after changing assets/: the built files are
# committed, and nothing is fetched when the pages are served.
assets:
	cd assets && npm ci --no-audit --no-fund && npm run build

# A fresh dev token: make token SUB=alice
token: install
	@$(PY) manage.py issue_token --sub $(or $(SUB),dev-learner) --ttl 86400

worker: install
	$(VENV)/bin/celery -A co_project worker

beat: install
	$(VENV)/bin/celery -A co_project beat

# The whole suite: SQLite by default; PostgreSQL/Redis when CO_DB_URL/CO_REDIS_URL are set.
test: system-packages install-dev
	CO_ENV=test $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
