# The soak: the real firmware under MicroPython for hundreds of upload windows, a fifth
# of them hit by a random emulator fault, with every invariant checked at the end.
import csv
import json
import os
import re
import subprocess
import sys
import time

import pytest

from tools import simboard, soak_report
from tools.board_files import LIB, ROOT
from tools.sim7600_emu import faults as emulator_faults
from tools.sim7600_emu import quirks as emulator_quirks
from tools.sim7600_emu.threaded import Control, ThreadedEmulator, Wire
from tools.soak_faults import DRAWN_QUIRKS, KINDS, Injector, Schedule

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CYCLES = 300
TICKS_PERIOD_MS = 1 << 30
# make soak-decade with this many windows: ticks_ms() starts 5 minutes before a wrap, so
# 12.4 days cross a second one; a window comes every 13 minutes on average (a failed one
# is retried after a minute's back-off), so 1,450 windows cover about 13 days
DECADE_WINDOWS = 1450
BOOT_MS = 60000  # the clock's time when the board boots: at most its wall-clock start-up


def test_soak_with_random_faults_keeps_every_invariant(tmp_path):
    paths = dict((name, str(tmp_path / ("soak." + name))) for name in ("json", "csv", "png"))
    code = simboard.main([
        "--runtime", "micropython", "--cycles", str(CYCLES), "--fault-rate", "0.2", "--seed", "1",
        # 320K: at 256K about 1 window in 100 runs out of heap (see the README's soak section)
        "--heap", "320K", "--time-scale", "0.0005", "--quiet",
        "--json", paths["json"], "--csv", paths["csv"], "--plot", paths["png"]])
    with open(paths["json"]) as f:
        figures = json.load(f)
    assert code == 0, [name for name, held in figures["invariants"].items() if not held]
    assert all(figures["invariants"].values()) and figures["ok"]
    assert figures["cycles"] == CYCLES and figures["resets"] == 0
    assert figures["readings_lost"] == 0 and figures["seq_conflicts"] == 0
    assert figures["readings_delivered"] + figures["readings_queued"] == figures["readings_collected"]
    assert figures["ledger_leaks"] == 0 and figures["modem_links_open_after_power_off"] == 0
    assert figures["modem_on_after_window"] == 0 and figures["faults_armed_late"] == 0
    assert figures["failed_without_fault"] == 0
    # exact under MicroPython: after warm-up the floor of used memory after gc rises at most
    # by a one-time step (a rare fault path first taken late), never with the cycles
    assert figures["growth"]["bytes"] <= soak_report.ONE_TIME_BYTES, figures["growth"]

    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == CYCLES and [int(row["cycle"]) for row in rows] == list(range(1, CYCLES + 1))
    faulted = [row for row in rows if row["fault"]]
    assert len(faulted) == figures["faults_injected"] and CYCLES // 10 < len(faulted) < CYCLES // 3
    assert len(set(row["fault"].rstrip("0123456789") for row in faulted)) >= 5
    failed = [row for row in rows if row["outcome"] == "fail"]
    assert failed and all(row["fault"] for row in failed)
    assert all(row["ledger"] == "0" for row in rows)
    assert all(int(row["delivered"]) >= 5 for row in rows if row["outcome"] == "ok")
    assert sum(int(row["delivered"]) for row in rows) == figures["readings_delivered"]

    with open(paths["png"], "rb") as f:
        assert f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE


def _decade_command(windows, folder):
    """The Makefile's soak-decade command, for `windows` windows, its files in folder."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        recipe = f.read().split("\nsoak-decade:", 1)[1].split("\n\n", 1)[0]
    line = re.search(r"\$\(PY\) -m tools\.simboard (.*)", recipe.replace("\\\n", " "), re.S).group(1)
    words = [os.path.join(folder, os.path.basename(word)) if word.startswith("soak/") else word
             for word in line.split()]
    words[words.index("--cycles") + 1] = str(windows)
    return [sys.executable, "-m", "tools.simboard"] + words


def test_the_decade_command_keeps_every_invariant_across_two_ticks_wraps(tmp_path):
    command = _decade_command(DECADE_WINDOWS, str(tmp_path))
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    with open(tmp_path / "decade.json") as f:
        figures = json.load(f)
    assert done.returncode == 0, [name for name, held in figures["invariants"].items() if not held]
    assert all(figures["invariants"].values()) and figures["cycles"] == DECADE_WINDOWS
    assert figures["readings_lost"] == 0 and figures["readings_without_ts_after_sync"] == 0
    assert figures["ts_out_of_seq_order"] == 0 and figures["ledger_leaks"] == 0
    assert figures["modem_on_after_window"] == 0 and figures["faults_armed_late"] == 0
    # one boot (a reset would start ticks_ms() again) whose ticks wrapped twice
    assert figures["resets"] == 0
    assert figures["clock_days"] * 86400000 >= BOOT_MS + 300000 + TICKS_PERIOD_MS, figures["clock_days"]
    assert "flash (littlefs, 2 MB)" in done.stdout and "life at one reading a minute" in done.stdout
    with open(tmp_path / "decade.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == DECADE_WINDOWS
    with open(tmp_path / "decade.png", "rb") as f:
        assert f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE


def test_ts_is_checked_after_the_first_sync_in_seq_order():
    assert simboard.time_figures([None, None, 100, 160, 160, 220]) == {
        "readings_without_ts_after_sync": 0, "ts_out_of_seq_order": 0}
    assert simboard.time_figures([None, 100, None, 90, 150]) == {
        "readings_without_ts_after_sync": 1, "ts_out_of_seq_order": 1}


def test_the_same_seed_gives_the_same_fault_schedule():
    def draws(seed, rate=0.3):
        schedule = Schedule(rate, seed)
        return [repr(schedule.next()) for _ in range(500)]

    first = draws(7)
    assert first == draws(7) and first != draws(8)
    assert 100 < sum(fault != "None" for fault in first) < 200
    assert draws(7, 0) == ["None"] * 500


def test_every_fault_of_the_catalogue_is_one_the_emulator_takes():
    schedule = Schedule(1, 3)
    seen = set()
    quirks = set()
    for _ in range(2000):
        fault = schedule.next()
        words = fault.request.split()
        if words[0] == "QUIRK":  # on for the window, off after it
            assert words[1] == "ON" and fault.undo == "QUIRK OFF " + words[2] and fault.quirk
            quirks |= emulator_quirks.parse(words[2:])
            seen.add("quirk")
            continue
        assert words[0] == "FAULT" and fault.undo is None and not fault.quirk
        name, params = emulator_faults.parse_words(words[1:])
        seen.add(name)
        assert params.get("count", 1) == 1 or name in emulator_faults.CONDITIONS
    assert seen == set(KINDS) and not seen & {"silent", "no_signal", "truncate"}
    assert quirks == set(DRAWN_QUIRKS) == set(emulator_quirks.QUIRKS) - {"cpin_silent_once"}
    on_from_the_start = Schedule(1, 3, quirks_on={"pieces", "no_space"})
    drawn = {repr(on_from_the_start.next()) for _ in range(2000)}
    assert "quirk:pieces" not in drawn and "quirk:no_space" not in drawn and "quirk:blank_lines" in drawn


def test_growth_is_judged_on_the_floor_of_clean_windows():
    flat = [1000, 1040, 1000, 1096] * 10
    assert soak_report.growth(flat)["bytes"] == 0
    # 32 bytes every 4th window: the floors at windows 11 and 21 differ by 2.5 steps
    rising = [1000 + 32 * (i // 4) for i in range(40)]
    rise = soak_report.growth(rising)
    assert rise["floor_early"] == 1064 and rise["floor_late"] == 1160
    assert rise["bytes"] == 96 and rise["per_cycle"] == 9.6
    # a failed window that ends holding less does not lower the floor of the clean ones
    used = [1000] * 40
    used[12] = 900
    clean = [i != 12 for i in range(40)]
    assert soak_report.growth(used, clean)["bytes"] == 0
    assert soak_report.growth(used)["bytes"] == 100
    # a floor that falls retains nothing
    used[12] = 1000
    used[25] = 900
    falling = soak_report.growth(used, clean)
    assert falling["bytes"] == -100 and falling["per_cycle"] == 0
    assert soak_report.growth([1000] * (soak_report.MIN_WINDOWS - 1)) is None


def test_scaled_sleeps_last_their_scaled_length_under_micropython():
    # A simulated board's 500 ms PWRKEY press at time scale 0.002 must hold 1 ms: the
    # emulator ignores a press shorter than 100 model ms (0.2 ms), and the window then
    # waits 15 s for a modem that never started. A sleep ends early about once in 400.
    script = (
        "import asyncio, sys, time\n"
        "sys.path.insert(0, %r)\n"
        "from cellmqtt import port\n"
        "async def main():\n"
        "    shortest = 10 ** 6\n"
        "    for _ in range(3000):\n"
        "        start = time.ticks_us()\n"
        "        await port.asleep_ms(500)\n"
        "        shortest = min(shortest, time.ticks_diff(time.ticks_us(), start))\n"
        "    print(shortest)\n"
        "asyncio.run(main())\n" % LIB)
    env = dict(os.environ, CELLMQTT_TIME_SCALE="0.002")
    result = subprocess.run([simboard.MICROPYTHON, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 1000, "a scaled 500 ms sleep lasted %s us" % result.stdout.strip()


def test_quirks_for_the_whole_run_reach_the_emulator_and_every_reading_is_delivered(tmp_path):
    figures_path = str(tmp_path / "figures.json")
    # a 20 s boot at time scale 0.01 (STATUS at 16 s, then AT probes until RDY) keeps the
    # modem on 200 ms before the window's first command, so over 300 ms a window (about
    # 400 here); a 12 s one about 250 ms in all
    code = simboard.main(["--runtime", "cpython", "--cycles", "2", "--time-scale", "0.01",
                          "--quirk", "slow_boot", "--quirk", "pieces", "--json", figures_path])
    with open(figures_path) as f:
        figures = json.load(f)
    assert code == 0 and figures["windows_ok"] == 2 and figures["readings_lost"] == 0
    assert figures["readings_delivered"] == figures["readings_collected"] == 10
    assert min(figures["modem_on_ms"]) > 300, figures["modem_on_ms"]
    with pytest.raises(SystemExit) as refused:
        simboard.main(["--quirk", "bogus"])
    assert refused.value.code == 2


class _Board:
    """A board's windows reduced to what the between-window check sees: the UART opened,
    the modem switched on with a press (time scale 0: any press toggles) unless it is
    on already, switched off with one unless `leave_on` (a planted power-off failure),
    the UART closed."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.pins = Control(emulator.control_address)
        self.uart = None

    def powered(self):
        return json.loads(self.pins.ask("STATE"))["powered"]

    def begin(self):
        self.uart = Wire(self.emulator.uart_address)
        if not self.powered():
            self.press()  # held until the injector's GO when the emulator holds power-ons

    def end(self, leave_on=False):
        if not leave_on:
            self.press()
            _until(lambda: not self.powered())
        self.uart.close()

    def press(self):
        assert self.pins.ask("SET 4 1") == "OK" and self.pins.ask("SET 4 0") == "OK"


def _until(condition, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_a_modem_left_on_is_caught_even_when_the_next_window_switches_it_off():
    with ThreadedEmulator(power_on=False, time_scale=0) as emulator:
        board = _Board(emulator)
        injector = Injector(emulator.control_address)
        assert injector.arm(None, 1)
        board.begin()
        _until(board.powered)
        board.end(leave_on=True)  # window 1: the power-off failed
        board.begin()  # window 2 at once: no press needed, so nothing holds it
        board.end()
        assert not board.powered()  # what sampling the emulator now would have seen
        state = injector.between_windows(1)
        assert state["powered"] and state["window"] == 1
        assert not injector.arm(Schedule(1, 3).next(), 2)  # window 2 went ahead: armed late
        assert not injector.between_windows(2)["powered"]
        injector.close()
        board.pins.close()
        assert emulator.errors == []


def test_a_modem_switched_off_is_never_flagged_and_the_next_window_waits_for_its_fault():
    with ThreadedEmulator(power_on=False, time_scale=0) as emulator:
        board = _Board(emulator)
        injector = Injector(emulator.control_address)
        for number in (1, 2, 3):
            assert injector.arm(None, number)
            if number == 1:
                board.begin()
            _until(board.powered)
            board.end()
            board.begin()  # the next window at once: its power-on waits for the injector
            time.sleep(0.05)
            assert not board.powered()
            state = injector.between_windows(number)
            assert state == {"window": number, "powered": False, "status_pin": 0, "links": [],
                             "tls_sessions": [], "call": "none"}
        # without the hold, the next window is on by the time a check samples the emulator
        injector.ask("HOLD OFF")
        _until(board.powered)  # the held press went through
        board.end()
        board.begin()
        _until(board.powered)
        assert not injector.between_windows(4)["powered"]
        assert injector.ask("WINDOW 5") == "PENDING"
        injector.close()
        board.pins.close()
        assert emulator.errors == []
