# Board targets, included by the Makefile (after its VENV and PY):
#   make mpy                          compile lib/ for the ESP32 into $(BUILD)
#   make deploy PORT=/dev/ttyUSB0     copy what changed to the board, then soft-reset it
#   make romfs                        the library as a ROMFS image, $(BUILD)/romfs.img
#   make deploy-romfs PORT=...        that image to a board with a ROMFS partition, the app
#                                     files (a deployed /lib library removed), soft reset
#   make repl | reset PORT=...
#   make free | netstat | list_fd PORT=...   the board's answer; main.py runs on
#                                     (tools/console.py; INTERRUPT=1: mpremote stops it)
#   make flash PORT=/dev/ttyUSB0 FIRMWARE=firmware.bin
#   make vboard                       a virtual board: prints the PTY to give as PORT
#   make package-json                 regenerate package.json (mpremote mip install)
BUILD ?= build
BAUD ?= 460800
# --app-only for a firmware with cellmqtt frozen in; --force to copy everything again
DEPLOY_FLAGS ?=
# The board's config: your own config.json, else the example.
CONFIG ?= $(firstword $(wildcard config.json config.example.json))
MPREMOTE = $(VENV)/bin/mpremote
# free, netstat and list_fd ask the console beside the duty cycle (lib/cellmqtt/repl.py).
# INTERRUPT=1 asks at the REPL instead, for firmware without the console or a board in
# deep sleep: mpremote's Ctrl-C stops main.py (`resume`: no soft reset first; `make reset`
# starts it again).
INTERRUPT ?=
REPL_COMMAND = $(MPREMOTE) connect $(PORT) resume exec "from cellmqtt.shell import $(1); $(1)()"

PORT_GOALS := deploy deploy-romfs repl free netstat list_fd reset flash
ifneq ($(filter $(PORT_GOALS),$(MAKECMDGOALS)),)
ifeq ($(PORT),)
$(error PORT is not set: give the board's serial device, e.g. `make $(firstword $(filter $(PORT_GOALS),$(MAKECMDGOALS))) PORT=/dev/ttyUSB0`, or the PTY that `make vboard` printed)
endif
endif
ifneq ($(filter flash,$(MAKECMDGOALS)),)
ifeq ($(FIRMWARE),)
$(error FIRMWARE is not set: `make flash PORT=$(PORT) FIRMWARE=path/to/firmware.bin` (a MicroPython ESP32 image; see firmware/README.md))
endif
endif

.PHONY: mpy deploy romfs deploy-romfs repl free netstat list_fd reset flash vboard package-json

mpy: $(VENV)/.installed
	rm -rf $(BUILD)
	$(PY) -m tools.mpy_build --out $(BUILD)
	$(if $(CONFIG),cp $(CONFIG) $(BUILD)/config.json)

deploy: mpy
	$(PY) -m tools.deploy --port $(PORT) --build $(BUILD) $(DEPLOY_FLAGS)

romfs: mpy
	$(PY) -m tools.romfs --build $(BUILD)

# mpremote refuses a board without a ROMFS partition before anything is changed
deploy-romfs: romfs
	$(MPREMOTE) connect $(PORT) romfs deploy $(BUILD)/romfs.img
	$(PY) -m tools.deploy --port $(PORT) --build $(BUILD) --app-only

repl: $(VENV)/.installed
	$(MPREMOTE) connect $(PORT) repl

free netstat list_fd: $(VENV)/.installed
	$(if $(INTERRUPT),$(call REPL_COMMAND,$@),$(PY) -m tools.console $(PORT) $@)

reset: $(VENV)/.installed
	$(PY) -m tools.deploy --port $(PORT) --reset-only

flash: $(VENV)/.installed
	$(PY) -m tools.flash --port $(PORT) --baud $(BAUD) $(FIRMWARE)

vboard: $(VENV)/.installed $(MPY_VENV)/.installed
	$(PY) -m tools.vboard $(VBOARD_ARGS)

package-json: $(VENV)/.installed
	$(PY) -m tools.mip_package
