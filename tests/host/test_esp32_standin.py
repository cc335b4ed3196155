# The ESP32 half of the port layer (port/esp32.py), run by the MicroPython unix port on
# the simulated board's stand-ins for machine and network (tools/esp32_standin), wired
# to the SIM7600 emulator: the lines a board runs outside an upload window too.
import os
import shutil
import subprocess

import pytest

from tools import mpy_build
from tools.board_files import ROOT
from tools.services import EmulatorProcess
from tools.simboard import ESP32_STANDIN, MICROPYTHON

DEVICE_ID = "240ac4a1b2c3"
_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def emulator():
    emulator = EmulatorProcess("--power", "off").start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return mpy_build.build_for_pc(str(tmp_path_factory.mktemp("build")), include_pc=False)


def _board(tmp_path, emulator, lib, boot):
    """boot.py on a simulated ESP32 board (board_start.py --esp32); (exit code, output)."""
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "boot.py").write_text(boot)
    (flash / "main.py").write_text("")
    env = dict(os.environ, CELLMQTT_MODEM=emulator.uart, CELLMQTT_CONTROL=emulator.control,
               CELLMQTT_DEVICE_ID=DEVICE_ID, CELLMQTT_TIME_SCALE="0.01")
    result = subprocess.run([MICROPYTHON, "-X", "heapsize=256K", os.path.join(ROOT, "tools", "board_start.py"),
                             "--lib", lib, "--esp32", ESP32_STANDIN],
                            cwd=flash, env=env, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    shutil.rmtree(flash)
    return result.returncode, result.stdout + result.stderr


def test_the_esp32_half_runs_on_the_stand_ins(tmp_path, emulator, lib, micropython_bin):
    assert emulator.ask("POWER ON") == "OK"
    code, out = _board(tmp_path, emulator, lib, """\
import asyncio, sys
from cellmqtt import port
print("NAME", port.NAME, sys.platform, port.unique_id())
print("ADC", port.adc_read_mv(35))
print("STATUS", port.input_pin(34).value())
port.output_pin(32, 0).value(1)

async def talk():
    stream = await port.open_uart({"id": 1, "baud": 115200, "tx": 27, "rx": 26})
    await stream.write(b"AT\\r")
    answer = b""
    while b"OK" not in answer:
        answer += await stream.read(64)
    await stream.close()
    await stream.close()
    print("UART", answer.split())

asyncio.run(talk())
""")
    assert code == 0, out
    assert "NAME esp32 esp32 %s" % DEVICE_ID in out
    assert 1750 < int(out.split("ADC ")[1].split()[0]) < 2150  # the model's cell through the 100k/100k divider
    assert "STATUS 1" in out
    assert "UART [b'AT', b'OK']" in out
    assert emulator.ask("GET 32") == "1"  # DTR, driven through the control port


def test_a_pin_a_board_lacks_is_refused(tmp_path, emulator, lib, micropython_bin):
    code, out = _board(tmp_path, emulator, lib, """\
from cellmqtt import port
for number, make in ((34, port.output_pin), (20, port.input_pin), (5, port.adc_read_mv)):
    try:
        make(number)
    except ValueError as error:
        print("REFUSED", number, error)
""")
    assert code == 0, out
    assert "REFUSED 34 pin can only be input" in out
    assert "REFUSED 20 invalid pin" in out and "REFUSED 5 invalid pin" in out


@pytest.mark.parametrize("call", ["port.reset()", "port.deep_sleep(60000)"])
def test_reset_and_deep_sleep_end_the_process_as_a_board_resets(tmp_path, emulator, lib, micropython_bin, call):
    code, out = _board(tmp_path, emulator, lib, "from cellmqtt import port\n%s\nprint('NOT REACHED')\n" % call)
    assert code == 75 and "NOT REACHED" not in out, out
