# Fresh machine: `make demo`, then `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
MODEL  ?= models/fer_vgg.keras
SAMPLE ?= tests/data/fer2013_sample

.PHONY: demo test install install-edge clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The stamp records which extras are installed, so `make test` after `make demo` adds only what is missing.
$(VENV)/.installed-all: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[train,convert,edge,mqtt,dev]"
	touch $@

install: $(VENV)/.installed-all

demo: install
	$(PY) -m train evaluate $(MODEL) --data $(SAMPLE) --split test

test: install
	$(PY) -m pytest -q -ra

clean-venv:
	rm -rf $(VENV)
