# The simulated board end to end: the real boot.py and main.py, the SIM7600 emulator
# driven through the power pins, a real broker, and an independent subscriber.
import json
import os
import signal
import subprocess
import sys
import time

from tools import simboard, soak_report
from tools.board_files import ROOT
from tools.services import Mosquitto, child_pids


def _run(tmp_path, *options):
    report = tmp_path / "figures.json"
    code = simboard.main(list(options) + ["--json", str(report)])
    figures = json.loads(report.read_text())
    return code, figures


def _check_delivery(figures, cycles):
    assert figures["cycles"] == cycles and figures["windows_ok"] == cycles
    assert figures["readings_lost"] == 0 and figures["duplicates"] == 0
    assert figures["readings_delivered"] + figures["readings_queued"] == figures["readings_collected"]
    assert figures["readings_delivered"] >= 5 * cycles
    assert figures["ledger_leaks"] == 0 and figures["modem_links_open_after_power_off"] == 0
    assert len(figures["modem_on_ms"]) == cycles and min(figures["modem_on_ms"]) > 0


def test_micropython_board_with_the_embedded_broker(tmp_path):
    code, figures = _run(tmp_path, "--runtime", "micropython", "--cycles", "8")
    assert code == 0
    _check_delivery(figures, 8)
    used = figures["mem_used"]
    # exact under MicroPython: after the first window (first use) not a byte more, ever
    # (the last window's objects, kept by asyncio's queue, were a step at window 1 to 6)
    assert len(set(used[1:])) == 1, used
    assert figures["growth"]["kind"] == "flat" and soak_report.judgement(figures) == "no leak"
    largest = figures["mem_largest_free"]
    assert len(largest) == 8 and 0 < min(largest) and max(largest) < 320 * 1024 - used[-1], largest


def test_cpython_board_with_mosquitto(tmp_path):
    broker = Mosquitto().start()
    try:
        code, figures = _run(tmp_path, "--runtime", "cpython", "--cycles", "5",
                             "--broker", broker.address)
    finally:
        broker.stop()
    assert code == 0
    _check_delivery(figures, 5)


def _judged(used, runtime="micropython"):
    figures = {"runtime": runtime, "growth": soak_report.growth(used), "readings_lost": 0,
               "modem_links_open_after_power_off": 0, "ledger_leaks": 0}
    return figures["growth"], soak_report.judgement(figures), soak_report.verdict(figures)


def test_a_one_time_step_is_told_from_a_slope_however_short_the_run():
    # the step the simulated board once showed: +10,976 bytes at window 6 of 10
    step, judgement, verdict = _judged([189312] + [189440] * 4 + [200416] * 5)
    assert step["kind"] == "step" and step["step_window"] == 6 and judgement == "no leak", verdict
    assert "a one-time step of +10976 bytes at window 6, flat through window 10" in verdict, verdict
    slope, judgement, verdict = _judged([189440 + 300 * i for i in range(10)])
    assert slope["kind"] == "slope" and judgement == "LEAK", verdict
    assert "still rising +600 bytes in windows 8-10" in verdict, verdict
    # two steps a few windows apart: still rising after the first
    _, judgement, verdict = _judged([1000] * 4 + [2000] * 4 + [3000] * 4)
    assert judgement == "LEAK", verdict
    # a rise in the last quarter only: a step or the start of a slope, nobody can tell yet
    late, judgement, verdict = _judged([1000] * 9 + [5000] * 3)
    assert late["kind"] == "late rise" and judgement == "NOT JUDGED", verdict
    assert "rose +4000 bytes in windows 10-12, too late in the run" in verdict, verdict
    flat, judgement, _ = _judged([1000, 1064] * 6)
    assert flat["kind"] == "flat" and judgement == "no leak"
    assert _judged([1000] * (soak_report.MIN_WINDOWS - 1))[1] == "NOT JUDGED"
    # CPython's traced figures are described, never judged
    assert _judged([1000 + 300 * i for i in range(10)], "cpython")[1] == "no leak"


def test_the_subscriber_takes_a_reading_dated_on_its_resend_as_a_copy():
    # taken before the clock was known, sent, then sent again dated (app.py _placed): a copy
    # with its ts, not a conflict; a ts that changes afterwards is one
    subscriber = object.__new__(simboard.Subscriber)  # its bookkeeping, without mosquitto_sub
    subscriber.receptions, subscriber.conflicts, subscriber.battery_mv, subscriber._seen = {}, 0, None, {}
    undated = {"seq": 1, "boot": 1, "rtc_s": 30, "battery_mv": 3900}
    for copy in (undated, dict(undated, ts=1935000030), dict(undated, ts=1935000030)):
        subscriber._received("d1", dict(copy))
    assert subscriber.conflicts == 0 and subscriber.stamps("d1") == [1935000030]
    subscriber._received("d1", dict(undated, ts=1935000031))
    assert subscriber.conflicts == 1 and subscriber.receptions == {"d1": 4} and subscriber.battery_mv == [3900, 3900]


def _is_board(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
            return b"micropython" in cmdline.read().split(b"\0")[0]
    except OSError:
        return False


def test_sigterm_ends_a_run_through_its_cleanup():
    # kill or timeout ends a run as Ctrl-C does: nothing it started is left running
    run = subprocess.Popen([sys.executable, "-m", "tools.simboard", "--runtime", "micropython",
                            "--cycles", "100000", "--time-scale", "0", "--quiet"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        started = []
        while not any(_is_board(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.2)
            started = child_pids(run.pid)
        assert any(_is_board(pid) for pid in started) and len(started) >= 4, started  # broker, emulator, subscriber
        run.send_signal(signal.SIGTERM)
        assert run.wait(30) != 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    left = [pid for pid in started if os.path.exists("/proc/%d" % pid)]
    assert not left, left
