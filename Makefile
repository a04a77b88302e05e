# csgclaw-django: `make run` (set up + serve on the embedded default), `make test` (set up + whole suite).
#
# make run ADDR=127.0.0.1:8000   serve on that address instead of [server].listen_addr (LISTEN= works too)
# make run SANDBOX=local         on the first run, use that sandbox provider instead of the detected one
#
# The first `make run` (no config.toml yet) onboards: the example model provider below, and the sandbox
# provider this machine can run (Docker, BoxLite, CSGHub, else local), printed with the reasons. The server
# then creates the manager's box in the background; the web UI shows its state.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
CONFIG := $(or $(CSGCLAW_CONFIG),$(or $(CSGCLAW_HOME),$(HOME)/.csgclaw)/config.toml)
LISTEN ?=
ADDR ?= $(LISTEN)
SANDBOX ?=

# The example provider of the first-run seed: a local csghub-lite; it is not probed, so the server
# comes up on a machine with no model server at all.
EXAMPLE_PROVIDER_FLAGS := --provider csghub-lite --base-url http://127.0.0.1:11435/v1 --api-key local \
	--models Qwen/Qwen3-0.6B-GGUF

.PHONY: install system-deps run serve test test-fast lint format bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# Optional system packages some tests use: bubblewrap (the local sandbox provider's isolation) and
# chromium (the browser test of the web UI). Installed when we are root with apt; otherwise those tests
# skip and say why.
system-deps:
	@missing=""; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing$$missing"; \
		( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing ) \
			>/dev/null 2>&1 || echo "note: could not install$$missing; the tests that need them will skip"; \
	fi

run: install
	@if [ ! -f "$(CONFIG)" ]; then \
		echo "No config at $(CONFIG): onboarding with the example provider (csghub-lite, Qwen/Qwen3-0.6B-GGUF)."; \
		$(PY) manage.py onboard --no-input --skip-manager-box $(EXAMPLE_PROVIDER_FLAGS) \
			$(if $(SANDBOX),--sandbox-provider $(SANDBOX)) || exit 1; \
		echo ""; \
		echo "To use another model, run for example:"; \
		echo "  $(PY) manage.py onboard --base-url https://api.example.com/v1 --api-key sk-... --models gpt-5.4"; \
		echo "or edit $(CONFIG) ([models] and [models.providers.<name>]); the LLM bridge picks changes up live."; \
		echo ""; \
	fi
	$(PY) manage.py migrate --no-input --verbosity 0
	$(PY) manage.py runserver $(ADDR)

serve: install
	$(PY) manage.py serve

test: install system-deps
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not live"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) bench/message_send.py
	$(PY) bench/fanout.py
	$(PY) bench/llm_proxy.py
	$(PY) bench/agent_runtime.py
	$(PY) bench/sql_vs_orm.py

clean:
	rm -rf $(VENV)
