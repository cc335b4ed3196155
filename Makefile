# make test: every gate on a fresh Debian 12 machine (Python 3.11).
PYTHON ?= python3
VENV := .venv
MPY_VENV := .venv-micropython
PY := $(VENV)/bin/python
MICROPYTHON := $(MPY_VENV)/bin/micropython
# The 32-bit MicroPython of make footprint: an npm package in a folder of its own (the
# package.json at the root is mip's, not npm's)
NODE_DIR := tools/footprint
# The heap of the MicroPython test lane: an ESP32 without PSRAM has about 110 KiB;
# the tests' own modules need room on top, and 64-bit objects are larger.
TEST_HEAP ?= 256K
# pytest-xdist workers of the CPython lane: most of its time is spent waiting (model
# clocks, boards, brokers), so more workers than the machine's 2 cores
TEST_JOBS ?= 3
APT_PACKAGES := mosquitto mosquitto-clients openssl postgresql

.PHONY: sim soak bench footprint test test-cpython test-micropython gates gate-mpy gate-types gate-lint deps apt clean

# make test: the installs first, timed on their own (a fresh machine's first run), then
# both lanes side by side (each lane's output printed whole when it ends), then the gates
test:
	@start=$$(date +%s); $(MAKE) --no-print-directory deps || exit 1; \
		echo "make test: deps (installs) took $$(($$(date +%s) - start)) s"
	@start=$$(date +%s); \
		$(MAKE) --no-print-directory -j2 --output-sync=target test-cpython test-micropython && \
		$(MAKE) --no-print-directory gates; status=$$?; \
		echo "make test: the tests and gates took $$(($$(date +%s) - start)) s"; exit $$status

deps: $(VENV)/.installed $(MPY_VENV)/.installed typings/.installed $(NODE_DIR)/node_modules/.installed apt

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

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	command -v node >/dev/null && command -v npm >/dev/null || sh tools/apt_deps.sh nodejs npm
	npm ci --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error
	touch $@

apt:
	sh tools/apt_deps.sh $(APT_PACKAGES)

# Both lanes run with a SIM7600 emulator, mosquitto and an echo server on loopback
# (tools/services.py), a set of its own for each test process: pytest's workers start theirs
# in tests/conftest.py, the MicroPython lane its own; each is stopped by PID at the end.
# (MAKEFLAGS emptied: a test's own `make free` is a user's, not a job of make test's -j2)
test-cpython: deps
	MAKEFLAGS= $(PY) -m pytest -q -n $(TEST_JOBS)

test-micropython: deps
	MAKEFLAGS= $(PY) -m tools.mp_lane --heap $(TEST_HEAP)

gates: gate-mpy gate-types gate-lint

gate-mpy: deps
	$(PY) -m tools.mpy_build --all

gate-types: deps
	$(PY) -m mypy --config-file mypy.ini $$($(PY) -m tools.board_files)

# ruff (pinned in requirements-dev.txt, rules and line length in ruff.toml): pyflakes and
# pycodestyle over the repository's own Python (not typings/)
gate-lint: deps
	$(PY) -m ruff check lib tools tests bench boot.py main.py

clean:
	rm -rf $(VENV) $(MPY_VENV) typings build $(NODE_DIR)/node_modules

# make sim: the firmware on a simulated board (emulated SIM7600, embedded broker), as a
# board runs it: the .mpy files, the ESP32 port layer on stand-ins for machine and network
sim: $(VENV)/.installed $(MPY_VENV)/.installed apt
	$(PY) -m tools.simboard --runtime micropython --cycles 20 --port esp32

# make soak: 10,000 upload windows under MicroPython, a fifth of them hit by a random
# modem fault; CSV, PNG and JSON figures in soak/ (about 30 minutes on 2 cores)
soak: $(VENV)/.installed $(MPY_VENV)/.installed apt
	mkdir -p soak
	$(PY) -m tools.simboard --runtime micropython --cycles 10000 --fault-rate 0.2 --seed 1 \
		--heap 320K --time-scale 0.0005 --quiet \
		--csv soak/soak.csv --plot soak/soak.png --json soak/soak.json

# make soak-decade: ten years of 15-minute windows (350,400, one reading a minute) on the
# virtual clock, MicroPython, a fifth of them faulted, against a mosquitto of its own (the
# embedded amqtt answers slower); figures in soak/decade.* (54 minutes on 2 cores otherwise
# idle, 0.009 s a window; docs/soak-and-bench.md, The decade)
.PHONY: soak-decade
soak-decade: $(VENV)/.installed $(MPY_VENV)/.installed apt
	mkdir -p soak
	$(PY) -m tools.simboard --runtime micropython --cycles 350400 --readings-per-window 15 \
		--fault-rate 0.2 --seed 10 --heap 320K --time-scale 0 --clock virtual --broker mosquitto --quiet \
		--csv soak/decade.csv --plot soak/decade.png --json soak/decade.json

# make bench: our client side by side with umqtt.simple, umqtt.robust and mqtt_async, and
# against the protocol's and the modem manual's minimum (about 6 minutes; bench/RESULTS.md)
bench: $(VENV)/.installed $(MPY_VENV)/.installed $(NODE_DIR)/node_modules/.installed apt
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) -m bench

# make fleet: 100 simulated boards (board 7 with a planted leak) against mosquitto, the
# collector storing into build/fleet.db, then the report, its page in build/fleet/index.html
# (about 3 minutes; docs/fleet.md). The report exits 1 for the flagged board: expected here.
fleet: $(VENV)/.installed apt
	mkdir -p build && rm -f build/fleet.db build/fleet.db-wal build/fleet.db-shm
	$(PY) -m tools.services -- sh -c '$(PY) -m tools.fleet collect --db build/fleet.db & collector=$$!; \
		$(PY) -m tools.fleet sim --boards 100 --windows 10 --leaky-board 7; status=$$?; \
		sleep 2; kill $$collector; wait $$collector; [ $$status -eq 0 ] || exit $$status; \
		$(PY) -m tools.fleet report --db build/fleet.db --memwatch window=4,warmup=1 --html build/fleet; \
		[ $$? -le 1 ]'

# make footprint: what the firmware costs in heap on a 32-bit MicroPython (and on the 64-bit
# unix port), per module, after boot per transport and at the live peak of an upload
# window, against the budgets of an ESP32 without PSRAM; build/footprint.json (about 10 s)
footprint: $(VENV)/.installed $(MPY_VENV)/.installed $(NODE_DIR)/node_modules/.installed
	$(PY) -m tools.footprint

# From PC to board: mpy, deploy, flash, repl, free, list_fd, netstat, vboard
include board.mk
