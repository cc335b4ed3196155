# The simulated board's virtual clock (port/_pc.py with tools.simboard --clock virtual),
# under MicroPython and CPython: sleeps between windows skip time on the clock file the
# emulator reads too, ticks_ms() wraps at 2**30 as on a board, and the RTC set in one
# process (boot) holds in the next (a reset or a deep-sleep wake), as do its own count
# and its memory.
import json
import os
import subprocess
import sys

import pytest

from tools.board_files import LIB
from tools.simboard import MICROPYTHON
from tools.sim7600_emu.model import Clock, clock_file

HOP_MS = 6 * 86400 * 1000  # under 2**29 ms: ticks_diff measures it across a wrap
HOPS = 5  # 30 days: ticks_ms() wraps 5 minutes in, then every 12.4 days: 3 times
UTC = 1935000000

BOARD = """
import asyncio, json, sys
sys.path.insert(0, %r)
from cellmqtt import port
seen = {"utc_at_boot": port.utc(), "ticks": [port.ticks_ms()], "diffs": [],
        "memory_at_boot": port.rtc_memory().decode(), "rtc_s_at_boot": port.rtc_s()}
if not seen["memory_at_boot"]:
    port.rtc_memory(b"7 1934999000")
for _ in range(%d):
    before = port.ticks_ms()
    asyncio.run(port.asleep_ms(%d))
    seen["ticks"].append(port.ticks_ms())
    seen["diffs"].append(port.ticks_diff(port.ticks_ms(), before))
if seen["utc_at_boot"] is None:
    port.set_utc(%d)
seen["utc"] = port.utc()
print(json.dumps(seen))
"""


def _board(runtime, clock):
    code = BOARD % (LIB, HOPS, HOP_MS, UTC)
    done = subprocess.run([runtime, "-c", code], env=dict(os.environ, CELLMQTT_CLOCK=clock),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("runtime", [MICROPYTHON, sys.executable], ids=["micropython", "cpython"])
def test_sleeps_skip_time_ticks_wrap_and_the_rtc_survives_a_reset(runtime, tmp_path):
    clock = str(tmp_path / "clock")
    clock_file(clock, True)
    emulator = Clock(0, clock)
    first = _board(runtime, clock)
    assert first["utc_at_boot"] is None
    span = HOP_MS * HOPS
    assert all(HOP_MS <= diff < HOP_MS + 1000 for diff in first["diffs"]), first["diffs"]
    ticks = first["ticks"]
    assert all(0 <= tick < 1 << 30 for tick in ticks)
    assert sum(later < earlier for earlier, later in zip(ticks, ticks[1:])) == 3
    assert span <= emulator.now_ms() < span + 5000  # the modem's clock moved with the board's
    assert UTC <= first["utc"] <= UTC + 2
    second = _board(runtime, clock)  # the next boot: its RTC runs on from the first's setting
    assert UTC <= second["utc_at_boot"] <= UTC + 5
    assert first["memory_at_boot"] == "" and second["memory_at_boot"] == "7 1934999000"
    assert span // 1000 <= second["rtc_s_at_boot"] - first["rtc_s_at_boot"] <= span // 1000 + 5
    assert UTC + span // 1000 <= second["utc"] <= UTC + span // 1000 + 5
    assert 2 * span <= emulator.now_ms() < 2 * span + 10000


WINDOW_BOARD = """
import json, sys, time
sys.path.insert(0, %r)
from cellmqtt.port import _pc
_pc.clock.window(True)  # the modem's UART opened: a window runs
time.sleep(0.1)
inside = _pc.clock.now_ms()
print(json.dumps({"inside": inside}))
sys.stdout.flush()
sys.stdin.readline()  # the emulator's Clock reads the clock meanwhile
_pc.clock.window(False)
print(json.dumps({"after": _pc.clock.now_ms()}))
"""


@pytest.mark.parametrize("runtime", [MICROPYTHON, sys.executable], ids=["micropython", "cpython"])
def test_a_window_runs_the_virtual_clock_at_its_rate_for_the_board_and_the_emulator(runtime, tmp_path):
    clock = str(tmp_path / "clock")
    clock_file(clock, True, window_rate=20)
    emulator = Clock(0, clock)
    board = subprocess.Popen([runtime, "-c", WINDOW_BOARD % LIB], env=dict(os.environ, CELLMQTT_CLOCK=clock),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    inside = json.loads(board.stdout.readline())["inside"]
    assert 2000 <= inside < 20000  # 0.1 s of wall clock at 20 times (a slow start counts too)
    assert inside <= emulator.now_ms() < inside + 5000  # the emulator's clock is the board's
    board.stdin.write("\n")
    board.stdin.close()
    after = json.loads(board.stdout.readline())["after"]
    assert board.wait(30) == 0
    closed = emulator.now_ms()
    assert after <= closed + 1 and closed - after < 1000  # the window closed: the wall's rate again


BOUND_BOARD = """
import asyncio, json, sys
sys.path.insert(0, %r)
from cellmqtt import port
from cellmqtt.port import _pc
_pc.clock.window(True)


async def unanswered():
    await asyncio.sleep(10)


async def bounded():
    try:
        await asyncio.wait_for(unanswered(), 1.0)
    except asyncio.TimeoutError:
        pass


before = port.ticks_ms()
asyncio.run(bounded())
print(json.dumps({"waited_ms": port.ticks_diff(port.ticks_ms(), before)}))
_pc.clock.window(False)
"""


def _in_a_window(runtime, tmp_path, board, **env):
    """What board (a script's source) printed last, run on a virtual clock whose window
    runs at 20 times the wall."""
    clock = str(tmp_path / "clock")
    clock_file(clock, True, window_rate=20)
    done = subprocess.run([runtime, "-c", board % LIB], env=dict(os.environ, CELLMQTT_CLOCK=clock, **env),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("runtime", [MICROPYTHON, sys.executable], ids=["micropython", "cpython"])
def test_a_bound_inside_a_window_is_waited_on_the_virtual_clock(runtime, tmp_path):
    waited = _in_a_window(runtime, tmp_path, BOUND_BOARD)["waited_ms"]
    # a 1 s bound is 1 s on the board's ticks, not 1 s of wall clock (20 s at the window's rate)
    assert 1000 <= waited < 10000, waited


SHORT_SLEEPS_BOARD = """
import asyncio, json, sys
sys.path.insert(0, %r)
from cellmqtt import port
from cellmqtt.port import _pc
_pc.clock.window(True)


async def coalescing():
    for _ in range(10):
        await port.asleep_ms(5)


before = port.ticks_ms()
asyncio.run(coalescing())
print(json.dumps({"slept_ms": port.ticks_diff(port.ticks_ms(), before)}))
_pc.clock.window(False)
"""


@pytest.mark.parametrize("runtime", [MICROPYTHON, sys.executable], ids=["micropython", "cpython"])
def test_a_sleep_under_a_millisecond_of_wall_clock_is_a_turn_of_the_loop(runtime, tmp_path):
    slept = _in_a_window(runtime, tmp_path, SHORT_SLEEPS_BOARD, CELLMQTT_TIME_SCALE="0")["slept_ms"]
    # ten 5 ms sleeps in a window at 20 times the wall: asyncio's shortest wait (1 ms) was
    # 20 ms on the clock each, 200 in all
    assert slept < 200, slept


HOLD_BOARD = """
import asyncio, json, sys
sys.path.insert(0, %r)
from cellmqtt import port
from cellmqtt.port import _pc
_pc.clock.window(True)
before = port.ticks_ms()
asyncio.run(port.hold_ms(500))
print(json.dumps({"held_ms": port.ticks_diff(port.ticks_ms(), before)}))
_pc.clock.window(False)
"""


@pytest.mark.parametrize("runtime", [MICROPYTHON, sys.executable], ids=["micropython", "cpython"])
def test_a_hold_inside_a_window_passes_whole_and_at_once_on_the_virtual_clock(runtime, tmp_path):
    held = _in_a_window(runtime, tmp_path, HOLD_BOARD, CELLMQTT_TIME_SCALE="0")["held_ms"]
    # PWRKEY's 500 ms: all of it on the clock the modem reads, where a sleep gave 20 ms (one
    # millisecond of wall, the shortest asyncio waits) for it; no wall clock is waited for
    # the rest (a second of wall would be 20 s on the clock)
    assert 500 <= held < 2500, held
