# The fault matrix: every fault the emulator and a misbehaving broker can inject, at every
# point of an upload window, through the real duty cycle (DutyCycle against the SIM7600
# emulator and mosquitto). After each faulted window: a typed error (or success), the
# ledger at its baseline, the modem off, no link left on the modem, every reading either
# acknowledged or still queued. Then the fault is gone and the next window delivers
# everything: each seq reaches an independent subscriber, duplicates only with the same
# content. Brown-outs at each point are in test_window_faults.py, MCU resets in
# test_mcu_reset.py, the disconnect-during-reconnect race in tests/test_mqtt_races.py.
# The field behaviours of real modems (the emulator's quirks) are not faults: with each one
# on, a window goes through and delivers everything.
import asyncio
import json

import pytest
from tests.host.duty_lab import duty_cycle_lab
from tests.host.mqtt_proxy import CUT_PUBLISH, DROP_PUBACK, ON_PUBLISH, PASS, REFUSE, MqttProxy

from cellmqtt import app, config, errors, errors_link, port
from cellmqtt.ledger import Ledger
from cellmqtt.port import _pc
from tools.board_files import ROOT
from tools.services import EmulatorProcess
from tools.sim7600_emu.quirks import QUIRKS

READINGS = 4  # two batches of two: two data PUBLISHes per window
# short bounds, so a silent modem or a missing PUBACK costs a fraction of a second
MODEM_TIMEOUTS = {"default": 400, "+CPIN": 400, "+NETOPEN": 600, "+NETCLOSE": 600,
                  "+CIPOPEN": 600, "+CIPSEND": 600, "+CIPCLOSE": 600, "sim": 400,
                  "register": 400, "late": 200, "boot": 3000, "probe": 100}
BROKER_TIMEOUT_S = 1
# The commands of a window, in order: (prefix, matching commands let through first).
# CIPSEND: 0 CONNECT, 1 SUBSCRIBE, 2 and 3 the data, 4 health, 5 DISCONNECT.
# CIPRXGET: 0 sets manual receive mode, then each read of what the broker sent.
# No AT+NETCLOSE: AT+CPOF ends the network (docs/modem.md, A window's commands).
POINTS = ([("ATE0", 0), ("AT+CEREG", 0), ("AT+CGDCONT", 0),
           ("AT+CIPRXGET", 0), ("AT+NETOPEN", 0), ("AT+CIPOPEN", 0)]
          + [("AT+CIPSEND", n) for n in range(6)]
          + [("AT+CIPRXGET", n) for n in (1, 2, 3)]
          + [("AT+CIPCLOSE", 0), ("AT+CPOF", 0)])
SESSION_POINTS = [("AT+CIPSEND", n) for n in range(6)] + [("AT+CIPRXGET", n) for n in (1, 2, 3)]
# the hierarchy's two modules: errors_link.py's classes show in errors only once asked for
TYPED = {name for module in (errors, errors_link) for name in dir(module)
         if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), errors.CellMqttError)}


def _label(prefix, skip):
    return "%s-%d" % (prefix[2:].lstrip("+").lower(), skip)


def _cases():
    cases = []
    for prefix, skip in POINTS:
        where = "command=%s skip=%d" % (prefix, skip)
        cases += [("silent %s count=1" % where, "silent-" + _label(prefix, skip)),
                  ("error %s count=1" % where, "error-" + _label(prefix, skip)),
                  ("cme code=100 %s count=1" % where, "cme-" + _label(prefix, skip)),
                  ("truncate %s" % where, "truncate-" + _label(prefix, skip))]
    for prefix, skip in SESSION_POINTS:
        where = "command=%s skip=%d" % (prefix, skip)
        cases += [("garbage bytes=64 seed=%d %s" % (skip, where), "garbage-" + _label(prefix, skip)),
                  ("remote_close link=0 %s" % where, "remote-close-" + _label(prefix, skip)),
                  ("send_timeout link=0 %s" % where, "send-timeout-" + _label(prefix, skip)),
                  ("network_lost %s" % where, "network-lost-" + _label(prefix, skip))]
    cases += [("reg_denied", "reg-denied"), ("no_sim", "no-sim"), ("no_signal", "no-signal"),
              ("short_send count=1", "short-send"), ("open_fail err=1", "open-fail-1"),
              ("open_fail err=10", "open-fail-10")]
    return cases


@pytest.fixture(scope="module")
def lab():
    with duty_cycle_lab(configure_port=True) as (broker, emulator, subscriber):
        proxy = MqttProxy(broker.address)
        try:
            yield broker, proxy, emulator, subscriber
        finally:
            proxy.stop()


@pytest.fixture
def board(lab, tmp_path, monkeypatch):
    """A fresh device (own folder, queue and name) with the modem off and no fault."""
    broker, proxy, emulator, subscriber = lab
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_pc, "TIME_SCALE", 0.05)  # key presses and STATUS polls, not AT bounds
    proxy.mode = PASS
    assert emulator.ask("RESET") == "OK"
    return lab


def _duty_cycle(proxy, book, device, timeouts=MODEM_TIMEOUTS, window_s=30):
    with open(ROOT + "/config.example.json") as f:
        raw = json.load(f)
    host, _, broker_port = proxy.address.rpartition(":")
    raw["broker"].update(host=host, port=int(broker_port), timeout_s=BROKER_TIMEOUT_S)
    raw["device_id"] = device
    raw["upload"].update(batch_size=2, window_s=window_s)
    raw["modem"] = {"timeouts": timeouts}
    return app.DutyCycle(config.validate(raw), book=book, log=lambda line: None)


def _faulted_window(lab, device, arm, **options):
    """One window with a fault armed by `arm()`; checks the invariants of a window that
    met a fault; returns the duty cycle, its ledger, the seqs of its readings and the
    window's outcome. options: for _duty_cycle."""
    broker, proxy, emulator, subscriber = lab
    book = Ledger()
    cycle = _duty_cycle(proxy, book, device, **options)
    book.mark_baseline()
    seqs = [cycle.sample() for _ in range(READINGS)]
    arm()
    outcome = asyncio.run(cycle.window())
    state = emulator.state()
    if not outcome.ok:
        assert outcome.error.partition(":")[0] in TYPED, outcome.error
    assert book.at_baseline(), book.extra()
    assert state["links"] == [] and not state["powered"] and cycle.power.state == "off", state
    assert cycle.store.depth == READINGS - outcome.delivered
    return cycle, book, seqs, outcome


def _recovers(lab, cycle, book, device, seqs):
    broker, proxy, emulator, subscriber = lab
    assert emulator.ask("CLEAR") == "OK"
    proxy.mode = PASS
    outcome = asyncio.run(cycle.window())
    assert outcome.ok, outcome.error
    assert cycle.store.depth == 0 and book.at_baseline(), book.extra()
    assert emulator.state()["links"] == [] and cycle.power.state == "off"
    _all_received(subscriber, device, seqs)


def _all_received(subscriber, device, seqs):
    deadline = port.ticks_add(port.ticks_ms(), 5000)
    while not set(seqs) <= set(subscriber.seqs(device)) and port.ticks_diff(deadline, port.ticks_ms()) > 0:
        port.sleep_ms(20)
    assert sorted(set(subscriber.seqs(device))) == seqs
    assert subscriber.conflicts == 0  # a duplicate is the same reading with the same seq


@pytest.mark.parametrize("fault,device", _cases(), ids=[case[1] for case in _cases()])
def test_modem_fault_fails_the_window_cleanly_and_the_next_delivers_all(board, fault, device):
    emulator = board[2]

    def arm():
        assert emulator.ask("FAULT " + fault) == "OK"

    cycle, book, seqs, outcome = _faulted_window(board, device, arm)
    _recovers(board, cycle, book, device, seqs)


@pytest.mark.parametrize("mode,device", [(REFUSE, "broker-refuses"), (CUT_PUBLISH, "broker-cuts-publish"),
                                         (DROP_PUBACK, "broker-never-acks")])
def test_broker_fault_fails_the_window_cleanly_and_the_next_delivers_all(board, mode, device):
    proxy = board[1]

    def arm():
        proxy.mode = mode

    cycle, book, seqs, outcome = _faulted_window(board, device, arm)
    assert cycle.store.depth == READINGS  # nothing was acknowledged
    if mode == REFUSE:  # the CONNACK's refusal, not the close that follows it
        assert outcome.error.startswith("MqttRefused"), outcome.error
    _recovers(board, cycle, book, device, seqs)


def _restart_broker(broker, subscriber):
    subscriber.subscribed.clear()
    broker.restart()


def test_broker_restart_mid_window_loses_nothing(board):
    broker, proxy, emulator, subscriber = board

    def arm():
        proxy.on_publish = lambda: _restart_broker(broker, subscriber)
        proxy.mode = ON_PUBLISH

    cycle, book, seqs, outcome = _faulted_window(board, "broker-restarts", arm)
    assert cycle.store.depth == READINGS
    assert subscriber.subscribed.wait(10)  # mosquitto_sub is back before the readings are
    _recovers(board, cycle, book, "broker-restarts", seqs)


def test_broker_down_for_a_window_loses_nothing(board):
    broker, proxy, emulator, subscriber = board
    cycle, book, seqs, outcome = _faulted_window(board, "broker-down", broker.kill)
    assert cycle.store.depth == READINGS
    subscriber.subscribed.clear()
    broker.start()
    assert subscriber.subscribed.wait(10)
    _recovers(board, cycle, book, "broker-down", seqs)


# Field behaviours: (quirk, a fault that makes it show, timeouts over MODEM_TIMEOUTS). An
# unanswered AT+CPIN? costs its timeout inside the "sim" bound; unknown registration
# stats the queries again ("requery") inside "register"; two ERRORs after +CIPERROR come when the
# broker's close meets the DISCONNECT's CIPSEND. slow_boot runs in real time, below.
QUIRK_CASES = [(name, None, {}) for name in QUIRKS if name not in ("slow_boot", "two_errors")] + [
    ("two_errors", "remote_close link=0 command=AT+CIPSEND skip=5", {}),
    ("all", "remote_close link=0 command=AT+CIPSEND skip=5", {"sim": 1500, "register": 3000, "requery": 200})]
QUIRK_TIMEOUTS = {"cpin_silent_once": {"sim": 1500}, "reg_unknown_first": {"register": 3000, "requery": 200}}


def _goes_through(lab, device, arm, **options):
    cycle, book, seqs, outcome = _faulted_window(lab, device, arm, **options)
    assert outcome.ok and outcome.delivered == READINGS, outcome.error
    _all_received(lab[3], device, seqs)
    return cycle


@pytest.mark.parametrize("quirk,fault,timeouts", QUIRK_CASES, ids=[case[0] for case in QUIRK_CASES])
def test_field_behaviour_the_window_goes_through_and_delivers_all(board, quirk, fault, timeouts):
    emulator = board[2]

    def arm():
        assert emulator.ask("QUIRK ON " + quirk) == "OK"
        if fault is not None:
            assert emulator.ask("FAULT " + fault) == "OK"

    timeouts = dict(MODEM_TIMEOUTS, **QUIRK_TIMEOUTS.get(quirk, {}), **timeouts)
    _goes_through(board, "quirk-" + quirk.replace("_", "-"), arm, timeouts=timeouts)


def test_field_behaviour_a_20_s_boot_in_real_time(lab, tmp_path, monkeypatch):
    """STATUS 16 s after the key press, RDY at 20 s: inside the power-up wait (20 s) and
    the AT probing after it, with the default bounds; the window takes about 30 s."""
    broker, proxy, emulator, subscriber = lab
    slow = EmulatorProcess("--power", "off", "--time-scale", "1", "--quirk", "slow_boot").start()
    try:
        port.configure(modem=slow.uart, control=slow.control)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(_pc, "TIME_SCALE", 1)
        proxy.mode = PASS
        cycle = _goes_through((broker, proxy, slow, subscriber), "quirk-slow-boot", lambda: None,
                              timeouts={}, window_s=60)
        assert cycle.power.cycle_on_ms >= 20000
    finally:
        port.configure(modem=emulator.uart, control=emulator.control)
        slow.stop()
