# The two commands of the README: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   ?= venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "anxin needs Python >= 3.11"'
	@# Debian ships venv's pip bootstrap separately.
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { echo "installing python3-venv (apt)"; \
	  $(SUDO) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null'; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Runs the whole thing on embedded defaults: broker, gateway, simulated home, hotline.
demo: $(STAMP)
	$(BIN)/anxin demo

# Installs Mosquitto, Chromium, systemd-analyze, shellcheck and logrotate (the unit's and
# install.sh's checks) if missing (needs root or sudo), then lint and the tests.
APT_NEEDS = $(if $(shell command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null),,mosquitto) \
            $(if $(shell command -v chromium 2>/dev/null),,chromium) \
            $(if $(shell command -v systemd-analyze 2>/dev/null),,systemd) \
            $(if $(shell command -v shellcheck 2>/dev/null),,shellcheck) \
            $(if $(shell command -v logrotate || ls /usr/sbin/logrotate 2>/dev/null),,logrotate)
test: $(STAMP)
	@if [ -n "$(strip $(APT_NEEDS))" ]; then echo "installing $(strip $(APT_NEEDS)) (apt)"; \
	  $(SUDO) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_NEEDS) >/dev/null'; fi
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

# Issue 8's performance budget (about 3 minutes): one JSON object, each figure beside its target.
bench: $(STAMP)
	$(BIN)/python -m bench --json

clean:
	rm -rf $(VENV) var *.egg-info
