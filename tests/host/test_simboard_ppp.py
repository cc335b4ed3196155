# The duty cycle over PPP: the simulated board (tools.simboard --transport ppp) runs
# several windows with the same invariants as the AT path, and in-process windows whose
# carrier drops or whose modem loses power in data mode fail cleanly (ledger at
# baseline, modem off, no call left) while the next window delivers everything; and
# TLS over PPP (on the MCU, through the port's TLS).
import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from cellmqtt import app, config, port
from cellmqtt.ledger import Ledger
from tools import simboard
from tools.board_files import ROOT
from tools.certs import make_pki
from tools.services import EmulatorProcess, Mosquitto, TlsMosquitto
from tools.simboard import Subscriber

CYCLES = 5
MAY_2031 = 1935360000  # 2031-05-01T00:00:00Z
# the library loaded from source needs more than 256 KiB on the unix port once PPP is in
RUNTIMES = [("cpython", "256K"), ("micropython", "512K")]


@pytest.mark.parametrize("runtime,heap", RUNTIMES)
def test_simulated_board_runs_its_duty_cycle_over_ppp(tmp_path, runtime, heap):
    figures_path = str(tmp_path / "figures.json")
    done = subprocess.run(
        [sys.executable, "-m", "tools.simboard", "--runtime", runtime, "--heap", heap,
         "--cycles", str(CYCLES), "--transport", "ppp", "--time-scale", "0", "--json", figures_path, "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(figures_path) as f:
        figures = json.load(f)
    assert figures["transport"] == "ppp" and figures["cycles"] == CYCLES
    assert figures["windows_ok"] == CYCLES
    assert figures["ppp_sessions"] == CYCLES  # every window went through a data call
    assert figures["ppp_escapes"] == CYCLES  # and left it with +++, its guard times kept
    # at time scale 0 a reading taken after the last window stays queued
    assert figures["readings_lost"] == 0
    assert figures["readings_delivered"] + figures["readings_queued"] == figures["readings_collected"]
    assert figures["readings_delivered"] >= 5 * CYCLES
    assert figures["ledger_leaks"] == 0
    assert figures["modem_on_after_window"] == 0
    assert figures["data_calls_up_after_window"] == 0


@pytest.fixture(scope="module")
def bench():
    broker = Mosquitto().start()
    emulator = EmulatorProcess("--power", "off", "--time-scale", "0").start()
    subscriber = Subscriber(broker.address)
    port.configure(modem=emulator.uart, control=emulator.control)
    try:
        yield broker, emulator, subscriber
    finally:
        port.configure(modem=os.environ.get("CELLMQTT_MODEM"), control=os.environ.get("CELLMQTT_CONTROL"))
        subscriber.stop()
        emulator.stop()
        broker.stop()


def _duty_cycle(broker, book, device, dtr=32):
    with open(ROOT + "/config.example.json") as f:
        raw = json.load(f)
    host, _, broker_port = broker.address.rpartition(":")
    raw["broker"].update(host=host, port=int(broker_port))
    raw["device_id"] = device
    raw["transport"] = "ppp"
    raw["pins"]["dtr"] = dtr
    raw["upload"].update(batch_size=2, window_s=30)
    return app.DutyCycle(config.validate(raw), book=book, log=lambda line: None)


def _wait_delivered(subscriber, device, seqs):
    deadline = port.ticks_add(port.ticks_ms(), 3000)
    while not set(seqs) <= set(subscriber.seqs(device)) and port.ticks_diff(deadline, port.ticks_ms()) > 0:
        port.sleep_ms(20)
    assert sorted(set(subscriber.seqs(device))) == seqs


def _after_a_failure(emulator, cycle, book, failed):
    state = emulator.state()
    assert book.at_baseline(), book.extra()
    assert not state["powered"] and cycle.power.state == "off"
    assert state["call"] == "none" and not state["data_mode"]
    assert cycle.store.depth >= 4 - failed.delivered


# 0: before PPP is up; 5 and 15: during MQTT on this machine (timing decides which
# step); 300: after the session, while the call waits out the escape's guard time
@pytest.mark.parametrize("after_ms", [0, 5, 15, 300])
def test_carrier_drop_fails_the_window_cleanly(bench, tmp_path, monkeypatch, after_ms):
    broker, emulator, subscriber = bench
    monkeypatch.chdir(tmp_path)
    book = Ledger()
    device = "carrier-drop-%d" % after_ms
    cycle = _duty_cycle(broker, book, device)
    book.mark_baseline()
    assert emulator.ask("RESET") == "OK"
    sessions = emulator.state()["ppp_sessions"]
    assert emulator.ask("FAULT carrier_drop ms=%d" % after_ms) == "OK"
    seqs = [cycle.sample() for _ in range(4)]

    failed = asyncio.run(cycle.window())
    if after_ms == 0:  # gone before PPP was up: nothing can have been delivered
        assert not failed.ok and failed.delivered == 0
    if not failed.ok:  # a typed error from whichever layer noticed first, never the window bound
        assert "took longer" not in failed.error, failed.error
    _after_a_failure(emulator, cycle, book, failed)
    assert emulator.state()["ppp_sessions"] == sessions + 1

    recovered = asyncio.run(cycle.window())
    assert recovered.ok, recovered.error
    assert cycle.store.depth == 0 and book.at_baseline()
    assert emulator.state()["call"] == "none"
    _wait_delivered(subscriber, device, seqs)


def test_an_ignored_escape_falls_back_to_dtr_then_to_power_off(bench, tmp_path, monkeypatch):
    broker, emulator, subscriber = bench
    monkeypatch.chdir(tmp_path)
    for dtr in (32, None):
        book = Ledger()
        device = "escape-ignored-%s" % dtr
        cycle = _duty_cycle(broker, book, device, dtr)
        book.mark_baseline()
        assert emulator.ask("RESET") == "OK"
        assert emulator.ask("FAULT escape_ignored") == "OK"
        seqs = [cycle.sample() for _ in range(4)]
        outcome = asyncio.run(cycle.window())
        state = emulator.state()
        assert book.at_baseline(), book.extra()
        assert not state["powered"] and state["call"] == "none"
        assert outcome.delivered == 4  # the data went before the hang-up
        if dtr is None:  # no hardware way out: the window fails and the key switches it off
            assert not outcome.ok and "stays in data mode" in outcome.error, outcome.error
        else:  # DTR off with AT&D1: back to commands, ATH, AT+CPOF
            assert outcome.ok, outcome.error
        _wait_delivered(subscriber, device, seqs)


def test_power_loss_in_data_mode_fails_the_window_cleanly(bench, tmp_path, monkeypatch):
    broker, emulator, subscriber = bench
    monkeypatch.chdir(tmp_path)
    book = Ledger()
    device = "ppp-brownout"
    cycle = _duty_cycle(broker, book, device)
    book.mark_baseline()
    assert emulator.ask("RESET") == "OK"
    seqs = [cycle.sample() for _ in range(4)]
    cut = []

    def cut_power_in_data_mode():  # the call stays in data mode >= 1 s (the guard time)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if emulator.state()["data_mode"]:
                cut.append(emulator.ask("FAULT brownout"))
                return
            time.sleep(0.02)

    cutter = threading.Thread(target=cut_power_in_data_mode)
    cutter.start()
    failed = asyncio.run(cycle.window())
    cutter.join()
    assert cut == ["OK"]
    assert not failed.ok and "lost power" in failed.error, failed.error
    _after_a_failure(emulator, cycle, book, failed)

    assert emulator.ask("CLEAR") == "OK"
    recovered = asyncio.run(cycle.window())
    assert recovered.ok, recovered.error
    assert cycle.store.depth == 0 and book.at_baseline()
    _wait_delivered(subscriber, device, seqs)


def test_a_ppp_window_sets_the_clock_from_the_network(bench, tmp_path, monkeypatch):
    """The network's time is read in command mode before the dial, as on the AT path."""
    broker, _, subscriber = bench
    monkeypatch.chdir(tmp_path)
    sets = []
    monkeypatch.setattr(port, "utc", lambda: None)
    monkeypatch.setattr(port, "set_utc", sets.append)
    emulator = EmulatorProcess("--power", "off", "--time-scale", "0", "--clock", "2031-05-01T00:00:00Z").start()
    port.configure(modem=emulator.uart, control=emulator.control)
    try:
        cycle = _duty_cycle(broker, Ledger(), "ppp-clock")
        seqs = [cycle.sample() for _ in range(2)]
        outcome = asyncio.run(cycle.window())
    finally:
        port.configure(modem=bench[1].uart, control=bench[1].control)
        emulator.stop()
    assert outcome.ok, outcome.error
    # the emulator's clock starts at --clock and runs on its model clock through the window
    assert len(sets) == 1 and MAY_2031 <= sets[0] <= MAY_2031 + 60, sets
    _wait_delivered(subscriber, device="ppp-clock", seqs=seqs)


def test_tls_over_ppp_uses_the_ports_tls(tmp_path):
    """broker.tls with transport ppp: TLS runs on the MCU (port.open_tls) through the
    PPP link, not on the modem's SSL stack."""
    pki = make_pki(str(tmp_path / "pki"))
    broker = TlsMosquitto(pki).start()
    try:
        report = tmp_path / "figures.json"
        code = simboard.main(["--runtime", "micropython", "--heap", "512K", "--cycles", "3",
                              "--transport", "ppp", "--tls", "--cafile", pki["ca"],
                              "--broker", broker.tls["good"], "--json", str(report), "--quiet"])
    finally:
        broker.stop()
    figures = json.loads(report.read_text())
    assert code == 0, figures
    assert figures["windows_ok"] == 3 and figures["ppp_sessions"] == 3
    assert figures["readings_lost"] == 0 and figures["ledger_leaks"] == 0
    assert figures["data_calls_up_after_window"] == 0 and figures["modem_on_after_window"] == 0
