# Brown-outs at many points of an upload window: the window fails cleanly (modem off,
# ledger at baseline, no link left on the modem) and the next one delivers everything.
import asyncio
import json

import pytest

from cellmqtt import app, config, port
from cellmqtt.ledger import Ledger
from tests.host.duty_lab import duty_cycle_lab
from tools.board_files import ROOT

# (command prefix, matching commands let through first): every step of a window
BROWNOUT_POINTS = [
    ("ATE0", 0), ("AT+CEREG", 0), ("AT+CGDCONT", 0), ("AT+NETOPEN", 0), ("AT+CIPOPEN", 0),
    ("AT+CIPSEND", 0),  # CONNECT and the data PUBLISHes, before the CONNACK
    ("AT+CIPSEND", 1),  # SUBSCRIBE (a new session), after the CONNACK
    ("AT+CIPSEND", 2),  # the health message
    ("AT+CIPRXGET", 0), ("AT+CIPCLOSE", 0), ("AT+CPOF", 0),  # no AT+NETCLOSE: AT+CPOF ends the network
]
# after these the batch is delivered: the window may end before it notices the loss
AFTER_DELIVERY = ("AT+CIPCLOSE", "AT+CPOF")


@pytest.fixture(scope="module")
def bench():
    with duty_cycle_lab(configure_port=True) as lab:
        yield lab


def _duty_cycle(broker, tmp_path, book, device):
    with open(ROOT + "/config.example.json") as f:
        raw = json.load(f)
    host, _, broker_port = broker.address.rpartition(":")
    raw["broker"].update(host=host, port=int(broker_port))
    raw["device_id"] = device
    raw["upload"].update(batch_size=2, window_s=30)
    return app.DutyCycle(config.validate(raw), book=book, log=lambda line: None)


@pytest.mark.parametrize("command,skip", BROWNOUT_POINTS)
def test_brownout_during_a_window_loses_nothing(bench, tmp_path, monkeypatch, command, skip):
    broker, emulator, subscriber = bench
    monkeypatch.chdir(tmp_path)
    book = Ledger()
    device = "brownout-%s-%d" % (command[3:].lower(), skip)
    cycle = _duty_cycle(broker, tmp_path, book, device)
    book.mark_baseline()
    assert emulator.ask("RESET") == "OK"
    assert emulator.ask("FAULT brownout command=%s skip=%d" % (command, skip)) == "OK"
    seqs = [cycle.sample() for _ in range(4)]

    failed = asyncio.run(cycle.window())
    state = emulator.state()
    if failed.ok:
        assert command in AFTER_DELIVERY and failed.delivered == 4
    else:
        assert "lost power" in failed.error, failed.error
    assert book.at_baseline(), book.extra()
    assert state["links"] == [] and not state["powered"] and cycle.power.state == "off"
    assert cycle.store.depth >= 4 - failed.delivered

    assert emulator.ask("CLEAR") == "OK"
    recovered = asyncio.run(cycle.window())
    assert recovered.ok, recovered.error
    assert cycle.store.depth == 0 and book.at_baseline()
    assert emulator.state()["links"] == []
    deadline = port.ticks_add(port.ticks_ms(), 3000)
    while not set(seqs) <= set(subscriber.seqs(device)) and port.ticks_diff(deadline, port.ticks_ms()) > 0:
        port.sleep_ms(20)
    assert sorted(set(subscriber.seqs(device))) == seqs
