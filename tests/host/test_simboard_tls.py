# The simulated board's duty cycle over TLS: the real firmware with broker.tls set by
# `python -m tools.simboard --tls --cafile F --broker HOST:PORT`, TLS through the
# emulated modem's SSL stack (AT+CCH*) to mosquitto's TLS listener.
import asyncio
import json
import os

import pytest

from cellmqtt import app, config, port, secrets
from cellmqtt.ledger import Ledger
from tools import simboard
from tools.board_files import ROOT
from tools.certs import make_pki
from tools.services import EmulatorProcess, TlsMosquitto

# compiling modem/tls.py from source at its first use takes over 130 KB for a moment on
# the 64-bit unix port (a board loads .mpy or frozen code, which needs no compiling)
_HEAP = "512K"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    pki = make_pki(str(tmp_path_factory.mktemp("pki")))
    broker = TlsMosquitto(pki).start()
    try:
        yield broker, pki
    finally:
        broker.stop()


def _run(tmp_path, *options):
    report = tmp_path / "figures.json"
    code = simboard.main(list(options) + ["--json", str(report)])
    return code, json.loads(report.read_text())


def test_duty_cycle_over_tls_loses_nothing(tmp_path, tls_broker):
    broker, pki = tls_broker
    code, figures = _run(tmp_path, "--runtime", "micropython", "--heap", _HEAP, "--cycles", "4",
                         "--tls", "--cafile", pki["ca"], "--broker", broker.tls["good"])
    assert code == 0, figures
    assert figures["cycles"] == 4 and figures["windows_ok"] == 4
    assert figures["readings_lost"] == 0 and figures["duplicates"] == 0
    assert figures["readings_delivered"] >= 20
    assert figures["ledger_leaks"] == 0 and figures["modem_links_open_after_power_off"] == 0


@pytest.fixture
def modem(tls_broker, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    emulator = EmulatorProcess("--power", "off", "--time-scale", "0").start()
    port.configure(modem=emulator.uart, control=emulator.control)
    try:
        yield emulator
    finally:
        port.configure(modem=os.environ.get("CELLMQTT_MODEM"), control=os.environ.get("CELLMQTT_CONTROL"))
        emulator.stop()


def _cycle(address, cafile, book):
    with open(os.path.join(ROOT, "config.example.json")) as f:
        raw = json.load(f)
    host, _, number = address.rpartition(":")
    raw["broker"].update(host=host, port=int(number), tls=True, cafile=cafile)
    raw["device_id"] = "tls01"
    cfg = config.validate(raw)
    login = secrets.Secrets()
    return app.DutyCycle(cfg, book=book, log=lambda line: None, secrets=login,
                         tls=secrets.tls_files(cfg["broker"], login))


@pytest.mark.parametrize("listener, ca", [("good", "other_ca"), ("expired", "ca"), ("wrong_host", "ca")])
def test_a_refused_certificate_fails_the_window(tls_broker, modem, listener, ca):
    """Through the modem's SSL: the window fails with a TlsError (the modem answers one
    code for every certificate it refuses, so the error says "certificate", not which
    check), the reading stays queued, and neither the ledger nor the modem holds a session."""
    broker, pki = tls_broker
    book = Ledger()
    cycle = _cycle(broker.tls[listener], pki[ca], book)
    cycle.sample()
    outcome = asyncio.run(cycle.window())
    assert not outcome.ok and "TlsError" in outcome.error and "certificate" in outcome.error, outcome.error
    assert cycle.store.depth == 1 and len(book) == 0, book.entries()
    state = modem.state()
    assert state["tls_sessions"] == [] and state["links"] == [] and not state["powered"], state
