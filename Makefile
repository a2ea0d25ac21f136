# Fresh machine: `make demo`, then `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# setuptools prints a boxed "Editable installation ... be careful with folders ... the same name as your
# package" on every editable install; here those folders are the packages, so the box is only noise
EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

# This team's copies of the data sets. The code has no default pointing here: users pass --data, set
# FER2013_DIR, or keep FER2013 in data/fer2013/ (docs/installing.md). An exported value wins.
SHARED_DATA ?= $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/fer2013),)
export FER2013_DIR ?= $(SHARED_DATA)/fer2013
endif
ifneq ($(wildcard $(SHARED_DATA)/ferplus),)
export FERPLUS_DIR ?= $(SHARED_DATA)/ferplus
endif
ifneq ($(wildcard $(SHARED_DATA)/portraits),)
export PORTRAITS_DIR ?= $(SHARED_DATA)/portraits
endif

.PHONY: demo docs-images test test-arm64 test-systemd bench bench-soak install install-edge clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The stamp records which extras are installed, so `make test` after `make demo` adds only what is missing.
$(VENV)/.installed-all: pyproject.toml | $(PY)
	$(EDITABLE) $(PIP) install -q -e ".[train,convert,edge,mqtt,dev]"
	touch $@

# The demo needs only what a Pi needs: no tensorflow.
$(VENV)/.installed-edge: pyproject.toml | $(PY)
	$(EDITABLE) $(PIP) install -q -e ".[edge]"
	touch $@

install: $(VENV)/.installed-all

install-edge: $(VENV)/.installed-edge

# The daemon's JSON stream, then something to look at: `fer-edge analyze` on the same clip prints a
# summary table (faces, tracks, emotions, fps) and writes an annotated clip and a timeline chart.
demo: install-edge
	rm -f runs/demo/events.jsonl
	$(PY) -m edge run --config edge/configs/demo.toml
	$(PY) -m edge analyze models/demo/demo_clip.mp4 --config edge/configs/demo.toml --out runs/demo/analysis --quiet

# README's and the docs' pictures, redrawn from the demo clip: docs/images/{demo-frame,timeline,live-view}.png
# (live-view needs Debian's chromium: apt-get install chromium).
docs-images: install-edge
	$(PY) -m tests.docs_images --out docs/images

# The edge tests run twice: with everything installed, and in a venv holding only `.[edge]`
# (what a Pi gets) plus the test tools, which proves edge/ needs no tensorflow.
EDGE_VENV ?= .venv-edge
$(EDGE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install -q --upgrade pip
	$(EDITABLE) $(EDGE_VENV)/bin/pip install -q -e ".[edge,mqtt]" pytest
	touch $@

test: install $(EDGE_VENV)/.installed
	$(PY) -m pytest -q -ra
	$(EDGE_VENV)/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is not None)"
	$(EDGE_VENV)/bin/python -m pytest -q -ra -p no:cacheprovider tests/test_edge_*.py
	# fer-bench end to end with edge dependencies only (tiny run counts: a smoke test, not a measurement)
	$(EDGE_VENV)/bin/python -m benchmarks run --quick --no-peer --threads 1 --batch 1 --frames 3 \
		--data tests/data/fer2013_sample --out runs/bench-edge-smoke

# The Pi's own architecture and software, emulated: arm64 Debian roots as Raspberry Pi OS ships them,
# Bookworm (Python 3.11, numpy 1.24: tflite-runtime) and Trixie (Python 3.13, numpy 2: LiteRT), built with
# debootstrap in parallel and cached in /var/cache/fer-edge-arm64; aarch64 wheels fetched on the host;
# the bundle installed inside each chroot (Bookworm: install.sh; Trixie: a first boot through cloud-init,
# flash-prepare then user-data's runcmd), then the installed daemon on the demo clip and `fer-edge detect`.
# Needs root, overlayfs and qemu-user-static, binfmt-support, debootstrap.
test-arm64: $(EDGE_VENV)/.installed
	FER_REQUIRE_ARM64=1 $(EDGE_VENV)/bin/python -m pytest -q -ra -p no:cacheprovider tests/test_deploy_arm64.py

# install.sh's systemd path for real: a Bookworm container booted with systemd as PID 1 (systemd-nspawn;
# root and wheels cached in /var/cache/fer-edge-systemd): the service user, the unit enabled and started,
# reload, reboot, upgrade, rollback of a release that fails to start, uninstall. Needs root,
# systemd-container and debootstrap.
test-systemd: install
	FER_REQUIRE_SYSTEMD=1 $(PY) -m pytest -q -ra -p no:cacheprovider tests/test_deploy_systemd.py

# The full benchmark for this machine: benchmarks/results/<host>-<date>/, the README table and
# benchmarks/reference/<device>.csv. Builds .venv-bench-fer (the PyPI `fer` package) on first use.
bench: install
	$(PY) -m benchmarks run --setup-peer --write-reference --readme README.md \
		$(if $(FERPLUS_DIR),--votes $(FERPLUS_DIR)/test.csv)

# Memory over 10,000 frames of the demo clip; added to today's newest run, whose table README shows.
bench-soak: install
	$(PY) -m benchmarks soak --frames 10000
	$(PY) -m benchmarks readme --update README.md

clean-venv:
	rm -rf $(VENV) $(EDGE_VENV)
