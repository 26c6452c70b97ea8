# The front door. Every target works from a fresh clone.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp

.PHONY: run test lint bench asterisk-up asterisk-down venv system-deps clean docker-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the sandbox (`run`, `asterisk-up`) and the tests need, installed only when
# missing: debootstrap makes the sandbox's root, unshare and nsenter (util-linux) run it, sipp
# (sip-tester) places the tests' calls, chromium renders the console in the browser tests,
# pango and a font let WeasyPrint render invoices as PDF, kamailio (with its Postgres module) is
# the SIP edge in front of several Asterisk nodes.
system-deps:
	@missing=""; \
	command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing="$$missing debootstrap"; \
	command -v sipp >/dev/null 2>&1 || missing="$$missing sip-tester"; \
	command -v unshare >/dev/null 2>&1 || missing="$$missing util-linux"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/*/libpangoft2-1.0.so.0 >/dev/null 2>&1 || missing="$$missing libpangoft2-1.0-0"; \
	[ -n "$$(fc-list 2>/dev/null | head -1)" ] || missing="$$missing fonts-dejavu-core fontconfig"; \
	command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || missing="$$missing kamailio"; \
	ls /usr/lib/*/kamailio/modules/db_postgres.so >/dev/null 2>&1 || missing="$$missing kamailio-postgres-modules"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

run: $(STAMP) system-deps
	$(VENV)/bin/graam-pbx run

test: $(STAMP) system-deps
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check graam_pbx tests bench migrations docker
	$(VENV)/bin/ruff format --check graam_pbx tests bench migrations docker
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP) system-deps
	@set -e; for f in bench/*.py; do \
	  name=$$(basename $$f .py); [ "$$name" = "__init__" ] && continue; \
	  $(PY) -m bench.$$name $(BENCH_ARGS); \
	done

# The production stack (docker/README.md): images made from debootstrap roots (no registry), the
# compose stack on 127.0.0.141-149, one call through Kamailio to a tenant's node and an agent,
# the active worker killed, another call, then everything torn down.
docker-check: $(STAMP) system-deps
	scripts/docker_daemon.sh
	docker/build.sh
	docker/stack.sh check

asterisk-up: $(STAMP) system-deps
	$(VENV)/bin/graam-pbx asterisk up

asterisk-down: $(STAMP)
	$(VENV)/bin/graam-pbx asterisk down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
