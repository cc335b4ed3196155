# make test: every gate on a fresh Debian 12 machine (Python 3.11).
PYTHON ?= python3
VENV := .venv
MPY_VENV := .venv-micropython
PY := $(VENV)/bin/python
MICROPYTHON := $(MPY_VENV)/bin/micropython
# The heap of the MicroPython test lane: an ESP32 without PSRAM has about 110 KiB;
# the tests' own modules need room on top, and 64-bit objects are larger.
TEST_HEAP ?= 256K
APT_PACKAGES := mosquitto

.PHONY: test test-cpython test-micropython gates gate-mpy gate-types deps apt clean

test: test-cpython test-micropython gates

deps: $(VENV)/.installed $(MPY_VENV)/.installed typings/.installed apt

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

$(MPY_VENV)/.installed: requirements-mpy.txt
	$(PYTHON) -m venv $(MPY_VENV)
	$(MPY_VENV)/bin/pip install -q -r requirements-mpy.txt
	touch $@

typings/.installed: requirements-stubs.txt $(VENV)/.installed
	rm -rf typings
	$(PY) -m pip install -q --target typings --no-deps -r requirements-stubs.txt
	touch $@

apt:
	sh tools/apt_deps.sh $(APT_PACKAGES)

test-cpython: deps
	$(PY) -m pytest -q

test-micropython: deps
	$(PY) -m tools.mp_lane --heap $(TEST_HEAP)

gates: gate-mpy gate-types

gate-mpy: deps
	$(PY) -m tools.mpy_build --all

gate-types: deps
	$(PY) -m mypy --config-file mypy.ini $$($(PY) -m tools.board_files)

clean:
	rm -rf $(VENV) $(MPY_VENV) typings build
