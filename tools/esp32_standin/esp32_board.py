# Makes the simulated board an ESP32 for cellmqtt (tools.simboard --port esp32): imported
# by tools/board_start.py before boot.py. cellmqtt.port then loads port/esp32.py (it
# reads sys.platform), which finds these stand-ins under the names machine and network.
# The firmware's sleeps are shortened by CELLMQTT_TIME_SCALE, as the PC port layer does
# (port/_pc.py), so that a simulated hour passes in seconds. Never on a board.
import asyncio
import sys

import esp32_machine
import esp32_network
import esp32_sys

sys.modules["sys"] = esp32_sys
sys.modules["machine"] = esp32_machine
sys.modules["network"] = esp32_network

_sleep_ms = asyncio.sleep_ms


def _scaled_sleep_ms(ms):
    return _sleep_ms(esp32_machine.scaled_ms(ms))


asyncio.sleep_ms = _scaled_sleep_ms  # before cellmqtt.port loads: port/_mp.py's asleep_ms is this
