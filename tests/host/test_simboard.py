# The simulated board end to end: the real boot.py and main.py, the SIM7600 emulator
# driven through the power pins, a real broker, and an independent subscriber.
import json

from tools import simboard
from tools.services import Mosquitto


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
    # exact under MicroPython: after two warm-up windows the floor does not rise
    assert min(used[-3:]) <= min(used[2:5]), used


def test_cpython_board_with_mosquitto(tmp_path):
    broker = Mosquitto().start()
    try:
        code, figures = _run(tmp_path, "--runtime", "cpython", "--cycles", "5",
                             "--broker", broker.address)
    finally:
        broker.stop()
    assert code == 0
    _check_delivery(figures, 5)
