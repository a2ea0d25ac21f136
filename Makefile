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

# The edge tests run twice: with everything installed, and in a venv holding only `.[edge]`
# (what a Pi gets) plus the test tools, which proves edge/ needs no tensorflow.
EDGE_VENV ?= .venv-edge
$(EDGE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install -q --upgrade pip
	$(EDGE_VENV)/bin/pip install -q -e ".[edge,mqtt]" pytest
	touch $@

test: install $(EDGE_VENV)/.installed
	$(PY) -m pytest -q -ra
	$(EDGE_VENV)/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is not None)"
	$(EDGE_VENV)/bin/python -m pytest -q -ra -p no:cacheprovider tests/test_edge_*.py

clean-venv:
	rm -rf $(VENV) $(EDGE_VENV)
