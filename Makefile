# `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test validate lint clean

# Debian packages the tests use: tshark dissects the packet captures (tests/test_pcap.py).
# Installed when missing and apt-get can; otherwise the tests that need it say so.
TOOLS := $(VENV)/.tools
$(TOOLS): | $(STAMP)
	@command -v tshark >/dev/null 2>&1 || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q tshark >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q tshark >/dev/null 2>&1; } || \
	  echo "make: could not install tshark (apt-get as root); its tests will be skipped"; }
	touch $(TOOLS)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: the policy-comparison study on the embedded default world (a few minutes).
run: $(STAMP)
	$(BIN)/netsim sweep experiments/policy-comparison.yaml --jobs 2

test: $(STAMP) $(TOOLS)
	$(BIN)/pytest -q

# Verification against theory: one line a check, with the measured figure and its bound.
validate: $(STAMP)
	$(BIN)/netsim check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) results
