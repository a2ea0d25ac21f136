# Fresh machine: `make demo`, then `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: demo test install install-edge clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The stamp records which extras are installed, so `make test` after `make demo` adds only what is missing.
$(VENV)/.installed-all: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[train,convert,edge,mqtt,dev]"
	touch $@

# The demo needs only what a Pi needs: no tensorflow.
$(VENV)/.installed-edge: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[edge]"
	touch $@

install: $(VENV)/.installed-all

install-edge: $(VENV)/.installed-edge

demo: install-edge
	rm -f runs/demo/events.jsonl
	$(PY) -m edge run --config edge/configs/demo.toml

test: install
	$(PY) -m pytest -q -ra

clean-venv:
	rm -rf $(VENV)
