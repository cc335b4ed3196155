# make footprint: sane figures for the firmware, and a budget that a module over it fails.
import json
import subprocess
import sys

from tools.board_files import ROOT
from tools.footprint import BUDGETS, HEAP_BYTES

QSTR_CHUNK = 128  # MICROPY_ALLOC_QSTR_CHUNK_INIT: qstr text is allocated in chunks of at least this

_TIMEOUT_S = 60


def _footprint(*arguments):
    return subprocess.run([sys.executable, "-m", "tools.footprint"] + list(arguments), cwd=ROOT,
                          capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)


def test_a_module_over_its_budget_fails_the_check_and_a_small_one_passes(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "table16k.py").write_text("TABLE = [0] * 4096  # 16 KB on a 32-bit MicroPython\n")
    (lib / "small.py").write_text("def answer():\n    return 42\n")
    path = tmp_path / "figures.json"
    result = _footprint("--lib", str(lib), "--module", "table16k", "--module", "small",
                        "--budget", "16384", "--check", "--json", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    budgets = json.loads(path.read_text())["budgets"]
    assert budgets["modules.table16k"]["ok"] is False
    assert budgets["modules.table16k"]["figure_32"] > 16384
    assert budgets["modules.small"]["ok"] is True
    assert "OVER budget 16384" in result.stdout and "PASS budget 16384" in result.stdout
    assert "over budget: modules.table16k" in result.stderr

    passing = _footprint("--lib", str(lib), "--module", "small", "--budget", "16384", "--check")
    assert passing.returncode == 0, passing.stdout + passing.stderr


def test_the_firmware_figures_are_sane(tmp_path):
    path = tmp_path / "footprint.json"
    result = _footprint("--json", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(path.read_text())
    assert figures["micropython_32"] and figures["micropython_64"]
    modules = figures["modules"]
    assert {"cellmqtt.app", "cellmqtt.mqtt", "cellmqtt.modem", "cellmqtt.port.esp32"} <= set(modules)
    assert "cellmqtt.port.unix" not in modules  # PC-only: never on a board
    for name, row in modules.items():
        assert row["mpy_bytes"] > 0 and row["resident_32"] > 0 and row["resident_64"] > 0, name
    assert figures["mpy_bytes"] == sum(row["mpy_bytes"] for row in modules.values())
    # own shares: each within what the module costs with its imports (give or take the
    # 128-byte chunks qstr text is kept in, which one import or the other happens to open);
    # all of them together at least what the largest module costs with its imports
    for bits in ("32", "64"):
        for name, row in modules.items():
            assert 0 <= row["own_" + bits] <= row["resident_" + bits] + QSTR_CHUNK, (name, bits, row)
        total = sum(row["own_" + bits] for row in modules.values())
        assert max(row["resident_" + bits] for row in modules.values()) <= total, bits
    assert modules["cellmqtt.errors"]["own_32"] > 1000
    app = modules["cellmqtt.app"]
    assert 0 < app["resident_32"] < app["resident_64"]

    transports = figures["transports"]
    for name in ("at", "tls", "ppp"):
        assert app["resident_32"] <= transports[name]["resident_32"] < transports[name]["resident_64"], name
    # each configuration took effect: TLS reads its CA through secrets, and only PPP loads PPP
    assert "cellmqtt.secrets" in transports["tls"]["imports"]
    assert "cellmqtt.modem.ppp" in transports["ppp"]["imports"]
    assert not {"cellmqtt.secrets", "cellmqtt.modem.tls", "cellmqtt.modem.ppp"} & set(transports["at"]["imports"])

    # boot's peak: what boot leaves and the config checker on top, within the heap
    checker = modules["cellmqtt.config"]
    for name in ("at", "tls", "ppp"):
        peak = figures["boot_peak"][name]
        for bits in ("32", "64"):
            left = transports[name]["resident_" + bits]
            assert left + checker["own_" + bits] // 2 < peak["peak_" + bits] < HEAP_BYTES, (name, bits, peak)

    assert modules["cellmqtt.mqtt"]["resident_32"] <= figures["mqtt"]["resident_32"] < figures["mqtt"]["resident_64"]

    # the window holds what boot left and more, within the heap; 32-bit objects are smaller
    window = figures["window"]
    for bits in ("32", "64"):
        assert 0 < window["boot_" + bits] < window["peak_" + bits] < HEAP_BYTES, window
        assert window["samples_" + bits] >= 20, window  # every AT exchange of the window
    assert window["peak_32"] < window["peak_64"], window
    assert abs(window["boot_32"] - transports["at"]["resident_32"]) < 4096, (window, transports["at"])

    assert set(figures["budgets"]) == {"transports.at", "mqtt", "window", "boot_peak.at"}
    assert figures["budgets"]["window"]["figure_32"] == window["peak_32"]
    assert figures["budgets"]["boot_peak.at"]["figure_32"] == figures["boot_peak"]["at"]["peak_32"]
    for key, verdict in figures["budgets"].items():
        assert verdict["ok"] == (verdict["figure_32"] <= verdict["budget_32"]), key
        assert ("OVER" if not verdict["ok"] else "PASS") in result.stdout
    assert "live peak of an AT upload window" in result.stdout and "boot's peak, at transport" in result.stdout

    # the gate: every figure within its budget
    for key, budget in BUDGETS.items():
        verdict = figures["budgets"][key]
        assert verdict["figure_32"] <= budget, "%s: %d B on 32-bit, over its budget of %d B" % (
            key, verdict["figure_32"], budget)
