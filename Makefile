# Two commands: `make start` runs the service locally, `make test` runs every test.
# Both install what they need first: a Python venv from the hash-locked requirements-dev.txt,
# Azurite from package-lock.json. `make lock` rewrites the Python locks from the *.in files.

# The Python the app is built for (Azure Functions runs this major.minor); .python-version says it.
PYTHON_VERSION := $(strip $(file < .python-version))
PYTHON ?= $(shell command -v python$(PYTHON_VERSION) || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP_INSTALL := -m pip install --quiet --disable-pip-version-check --require-hashes
# Shown in the lock files' header as the command that wrote them.
export CUSTOM_COMPILE_COMMAND := make lock
PIP_COMPILE = $(PY) -m piptools compile --quiet --generate-hashes --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_ARGS)

.PHONY: setup test start check bench lock clean reseal-secrets soak

# Another major.minor stops make with one line, before a venv is made (`make clean` always runs).
# An existing venv is checked too: it may have been made by another interpreter.
comma := ,
CHECKED_PYTHON := $(if $(wildcard $(PY)),$(PY),$(PYTHON))
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),default)),)
  HAVE_VERSION := $(shell $(CHECKED_PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
  ifneq ($(HAVE_VERSION),$(PYTHON_VERSION))
    FOUND := $(if $(HAVE_VERSION),is Python $(HAVE_VERSION),is not a working Python)
    FIX := $(if $(wildcard $(PY)),$(VENV) was made by it: run make clean$(comma) then make with,run make with) PYTHON=/path/to/python$(PYTHON_VERSION)
    $(error roomsync is built for Python $(PYTHON_VERSION) (see .python-version) but $(CHECKED_PYTHON) $(FOUND); $(FIX))
  endif
endif

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

# Tests run in random order; pytest-randomly prints the seed, PYTEST_ARGS=--randomly-seed=N repeats it.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The sync state machine (tests/integration/test_sync_state_machine.py) with many more examples
# than `make test` runs; prints how many examples and steps ran. SOAK_EXAMPLES, SOAK_STEPS change it.
SOAK_EXAMPLES ?= 40
SOAK_STEPS ?= 20
soak: setup
	@stats=$$(mktemp); \
	ROOMSYNC_SOAK_EXAMPLES=$(SOAK_EXAMPLES) ROOMSYNC_SOAK_STEPS=$(SOAK_STEPS) ROOMSYNC_SOAK_STATS=$$stats \
	$(PY) -m pytest -p no:randomly -q --timeout=0 tests/integration/test_sync_state_machine.py $(PYTEST_ARGS); \
	status=$$?; cat $$stats; rm -f $$stats; exit $$status

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

# Runs every bench/ script and writes one report to bench/results/ (report-<date>.md and latest.md).
bench: setup
	$(PY) $(PIP_INSTALL) -r requirements-bench.txt
	$(PY) -m bench.report $(BENCH_ARGS)

# Rewrites requirements.txt (runtime, deployed), requirements-dev.txt and requirements-bench.txt
# from their .in files, keeping every pin that still fits. LOCK_ARGS=--upgrade moves everything to
# the newest release, LOCK_ARGS="--upgrade-package NAME" one package.
lock: setup
	$(PIP_COMPILE) -o requirements.txt requirements.in
	$(PIP_COMPILE) --allow-unsafe -o requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) --allow-unsafe -o requirements-bench.txt requirements-bench.in

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis

# Prints a new SECRET_ENCRYPTION_KEY (standard library only, no setup needed): make -s keygen
.PHONY: keygen
keygen:
	@$(PYTHON) devtools/keygen.py
