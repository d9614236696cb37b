# Two commands: `make start` runs the service locally, `make test` runs every test.
# Both install what they need first (Python venv + pinned packages, Azurite from npm).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: setup test start check bench clean reseal-secrets

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

start: setup
	$(PY) -m devtools.start $(START_ARGS)

# Starts everything, asks /api/health once, stops (a smoke test of `make start`).
check: setup
	$(PY) -m devtools.start --check

# After a SECRET_ENCRYPTION_KEY rotation: re-seal every client secret with the current key.
# Reads the app settings from the environment (AzureWebJobsStorage..., SECRET_ENCRYPTION_KEY,
# SECRET_ENCRYPTION_OLD_KEYS); prints counts only.
reseal-secrets: setup
	$(PY) -m sync.reseal

bench: setup
	$(PY) -m pip install --quiet -r requirements-bench.txt
	for script in bench/[a-z]*.py; do $(PY) -m bench.$$(basename $$script .py) || exit 1; done

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
