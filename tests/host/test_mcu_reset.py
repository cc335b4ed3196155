# An MCU reset at many points of an upload window: the firmware process is killed
# (no clean-up runs, the modem stays on with its links), boots again from boot.py, and
# its next window delivers everything that was not delivered before. Nothing is lost.
import os
import signal
import subprocess
import time

import pytest

from cellmqtt.store import Store
from tools.board_files import ROOT
from tests.host.duty_lab import board_flash, duty_cycle_lab
from tools.simboard import MICROPYTHON, board_config

TIME_SCALE = "0.002"
# kill points: the number of AT commands the modem has served (a window takes ~30)
KILL_AFTER_COMMANDS = [3, 8, 12, 16, 20, 24, 28, 33]
_WAIT_S = 30


@pytest.fixture(scope="module")
def bench():
    with duty_cycle_lab(TIME_SCALE) as lab:
        yield lab


def _boot(flash, emulator):
    """The board from its flash: boot.py, main.py and the library as .mpy in lib/."""
    env = dict(os.environ, CELLMQTT_MODEM=emulator.uart, CELLMQTT_CONTROL=emulator.control,
               CELLMQTT_TIME_SCALE=TIME_SCALE)
    return subprocess.Popen(
        [MICROPYTHON, "-X", "heapsize=320K", os.path.join(ROOT, "tools", "board_start.py"), "--lib",
         os.path.join(flash, "lib")], cwd=flash, env=env, stdout=subprocess.PIPE, text=True)


def _wait_for_commands(emulator, count):
    for _ in range(_WAIT_S * 200):
        if emulator.state()["commands"] >= count:
            return
        time.sleep(0.005)
    raise AssertionError("the modem never served %d commands" % count)


@pytest.mark.parametrize("kill_after", KILL_AFTER_COMMANDS)
def test_mcu_reset_mid_window_loses_nothing(bench, tmp_path, kill_after):
    broker, emulator, subscriber = bench
    device = "reset%d" % kill_after
    config = board_config(broker.address, float(TIME_SCALE))
    config["device_id"] = device
    flash = board_flash(tmp_path, config)
    assert emulator.ask("RESET") == "OK"

    board = _boot(flash, emulator)
    _wait_for_commands(emulator, kill_after)
    board.send_signal(signal.SIGKILL)
    board.wait()
    board.stdout.close()

    board = _boot(flash, emulator)
    try:
        # the first window after a reset may fail (a reset during a key press or a CPOF
        # leaves the modem between on and off); one of the next must deliver
        windows = []
        for line in board.stdout:
            if line.startswith("window "):
                windows.append(line)
                if line.split()[2] == "ok" or len(windows) == 3:
                    break
    finally:
        board.send_signal(signal.SIGTERM)
        board.wait(10)
        board.stdout.close()
    assert windows and windows[-1].split()[2] == "ok", windows
    assert emulator.state()["links"] == []

    store = Store(str(flash / "queue"))
    queued = set(seq for seq, _ in store.peek(store.depth))
    collected = set(range(1, store.next_seq))
    store.close()
    for _ in range(200):
        if collected <= set(subscriber.seqs(device)) | queued:
            break
        time.sleep(0.01)
    assert collected - queued - set(subscriber.seqs(device)) == set()
    assert len(collected) >= 5
