# Freezes cellmqtt into a MicroPython ESP32 firmware (see README.md beside this file):
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=<this repo>/firmware/manifest.py
# The file list is tools/board_files.py's, so the PC-only port modules stay out.
# MicroPython's manifest tool runs this file with its folder as the working directory and
# provides include() and package().
import importlib.util

include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821

_spec = importlib.util.spec_from_file_location("cellmqtt_board_files", "../tools/board_files.py")
_board_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_board_files)
package("cellmqtt", files=[path[len("cellmqtt/"):] for path in _board_files.lib_sources()],  # noqa: F821
        base_path="../lib")
