"""The firmware's heap figures on a 32-bit MicroPython, against the budgets of an ESP32 without PSRAM.

  python -m tools.footprint [--check] [--json PATH]
  python -m tools.footprint --lib DIR --module NAME [--module NAME ...] [--budget BYTES] [--check]

Compiles the board's files as `make deploy` ships them (tools/mpy_build.py) and measures
them on two MicroPythons: the webassembly port (32-bit, as an ESP32; npm package in
tools/footprint/, run under node) and the unix port (64-bit, .venv-micropython). Each
figure comes from a fresh interpreter: after stand-ins for what a board has and a PC's
port lacks (tools/footprint/standin: machine, network, and sys.platform "esp32", so
that cellmqtt.port loads the ESP32 half), the firmware's MicroPython modules (asyncio,
json, ...) are imported, then gc.collect() and gc.mem_alloc() give the baseline; then
the figure's imports, gc.collect(), and gc.mem_alloc() again. A figure is the
difference: heap in use after a collection, in bytes, with each new qstr counted at its
entry's size instead of the qstr pool growth it happened to trigger (pools double, so
that would swing a figure by up to 8 KB with how full the pool was before). Every
import, collection and reading is a call of its own (the webassembly port collects
only when the call that asked returns).

Figures (all in build/footprint.json, or --json PATH):
  {"micropython_32": version, "micropython_64": version,
   "mpy_bytes": the board's lib/ as .mpy, in total,
   "stdlib": {"resident_32", "resident_64"}: the MicroPython modules above (not budgeted:
       they differ between ports, and on a board they are frozen),
   "modules": {name: {"mpy_bytes", "resident_32", "resident_64", "own_32", "own_64"}}:
       each module of lib/cellmqtt, its own .mpy file, the heap of importing it with what
       it imports, and its own share: what importing it adds once everything it imports
       is loaded (all modules imported in one interpreter, each after what it imports;
       a package whose __init__ imports its submodules, as cellmqtt.port does, carries
       their share, and theirs reads 0),
   "transports": {"at" | "tls" | "ppp": {"resident_32", "resident_64", "imports"}}:
       boot.py and main.py run as on a board (config.example.json with the transport's
       changes, loaded and checked; the duty cycle built, its loop not started), plus
       what a first upload window imports on that transport (TRANSPORTS); "imports": the
       cellmqtt modules then loaded,
   "boot_peak": {"at" | "tls" | "ppp": {"peak_32", "peak_64"}}: the heap at boot's highest
       point: main.py's duty cycle built while the config checker, which app.main unloads
       right after, is still loaded (the same boot with that unload held back),
   "mqtt": {"resident_32", "resident_64"}: the MQTT client (MQTT_IMPORTS) with what it imports,
   "window": {"peak_32", "peak_64", "boot_32", "boot_64", "samples_32", "samples_64"}:
       the live peak of one upload window on the AT path (below), the heap after boot
       before it, and how many samples the peak is the highest of,
   "budgets": {figure: {"budget_32", "figure_32", "ok"}}}
A figure's name in BUDGETS is its place in the JSON ("transports.at"); a window and a
boot's peak are held to their peak, anything else to its resident heap. --check exits 1
when one is over. With --lib, the modules named are measured from DIR (laid out like a
board's /lib) instead, each against --budget: for a figure of another library, or to see
the check fail.

The window figure is a board's wake that uploads, run in-process against fakes: the
real ModemTransport (SIM7600 driver, AT channel, link), MQTT client, store, power
manager and memory watchdog, with config.example.json's settings but for WINDOW_CONFIG.
Four readings are queued on flash first (earlier wakes), then boot.py and main.py run;
main.py's duty cycle then takes the fifth reading and uploads all five in one window
with QoS 1, and ends in deep sleep. Its UART (port.open_uart) and its PWRKEY and STATUS
pins go to a scripted SIM7600 (tools/footprint/standin/modem.py) that answers the AT
commands of a window as the modem does, with a small MQTT broker at the far end of the
link. The live peak is the highest heap in use after a collection, sampled at every
UART read and write: gc.collect(), then gc.mem_alloc(). On the webassembly port
gc.collect() only asks for a collection, which runs once the call from JS returns
(with no C stack to scan); so a sample waits for one turn of node's event loop (it
awaits a resolved JS Promise) before it reads. The window's asyncio there is the
port's own, which runs its tasks from node's event loop: the run is awaited through
runPythonAsync. On the unix port the collection is immediate and scans the C stack
conservatively, as an ESP32's does. The stand-in's own buffers are made before the
baseline, so the figure holds what the firmware holds, plus the bytes each UART read
returns (as a board's UART stream allocates them). A window that does not deliver
the five readings is an error, not a figure.
"""

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tools import certs, mpy_build
from tools.board_files import ROOT, lib_sources
from tools.mp_lane import MICROPYTHON

KIB = 1024
# Issue 15: the heap an ESP32 without PSRAM gives stock MicroPython (110-130 KB) must
# hold the firmware and a whole upload window.
# The window's budget is also the boot's: the firmware's highest point must fit.
BUDGETS = {
    "transports.at": 80 * KIB,
    "mqtt": 32 * KIB,
    "window": 96 * KIB,
    "boot_peak.at": 96 * KIB,
}
FOLDER = os.path.join(ROOT, "tools", "footprint")
NODE_RUNNER = os.path.join(FOLDER, "run.mjs")
UNIX_RUNNER = os.path.join(FOLDER, "run_unix.py")
NPM_PACKAGE = os.path.join(FOLDER, "node_modules", "@micropython", "micropython-webassembly-pyscript")
EXAMPLE_CONFIG = os.path.join(ROOT, "config.example.json")
HEAP_BYTES = 4 * 1024 * 1024  # room for any import: the figures do not depend on it
TIMEOUT_S = 120
# A qstr's entry in its pool: a pointer, a 2-byte hash and a 1-byte length (ports with
# MicroPython's extra features, the ESP32's among them)
QSTR_ENTRY_32 = 4 + 3
QSTR_ENTRY_64 = 8 + 3
# What the firmware's MicroPython has built in or frozen and cellmqtt imports
STDLIB = ("array", "asyncio", "binascii", "gc", "hashlib", "json", "micropython", "os", "struct", "time")
MQTT_IMPORTS = ("cellmqtt.mqtt", "cellmqtt.mqtt.client")
CA_FILE = "ca.pem"
# transport -> (its changes to config.example.json, what its first window imports: a
# module loaded on first use stays in the heap from then on)
TRANSPORTS = {
    "at": ({}, ("cellmqtt.modem.sim7600", "cellmqtt.mqtt.client")),
    "tls": ({"broker": {"tls": True, "port": 8883, "cafile": CA_FILE}},
            ("cellmqtt.modem.sim7600", "cellmqtt.modem.tls", "cellmqtt.mqtt.client")),
    "ppp": ({"transport": "ppp"}, ("cellmqtt.modem.sim7600", "cellmqtt.modem.ppp", "cellmqtt.mqtt.client")),
}
# The window figure's changes to config.example.json: the window opens at the fifth
# reading, and the board deep-sleeps after it (which ends the run); a stuck window fails
# within 30 s instead of outlasting TIMEOUT_S.
WINDOW_CONFIG = {"upload": {"every_n_readings": 5, "window_s": 30}, "sleep": {"mode": "deep"}}
WINDOW_READINGS = 5

_SETUP = """\
import gc
import micropython
import sys
print("PORT %d.%d.%d" % sys.implementation.version[:3])
sys.path[:] = ["", ".frozen", "lib"]
from standin import esp32_sys, machine, network
sys.modules["sys"] = esp32_sys
sys.modules["machine"] = machine
sys.modules["network"] = network
del esp32_sys, machine, network
"""
# main.py's asyncio.run keeps the duty cycle's coroutine unstarted: the booted objects
# stay alive as under a running loop, and main.py returns.
_STDLIB = "import %s\n_held = []\nasyncio.run = _held.append" % ", ".join(STDLIB)
_COLLECT = "gc.collect()"
_LOADED = 'if %r in sys.modules:\n    print("LOADED", %r)'
_READ = 'print("MEM", gc.mem_alloc())\nmicropython.qstr_info()'
_STARTED = """\
if len(_held) != 1:
    raise RuntimeError("main.py did not start the duty cycle")
print("IMPORTS", " ".join(sorted(name for name in sys.modules if name.startswith("cellmqtt"))))
"""
# The boot's peak: app.main's unload of the config checker held back (it finds unload on
# the package when it runs), and the checker then found still loaded, or the figure
# would be the heap after boot under another name.
_HOLD_CHECKER = "import cellmqtt\ncellmqtt.unload = lambda name: None"
_CHECKER_HELD = """\
if "cellmqtt.config" not in sys.modules:
    raise RuntimeError("main.py's boot unloaded the config checker some other way")
"""
# The window figure: the stand-in modem is made before the baseline; the readings the
# board queued on earlier wakes are appended through the firmware's own store (which
# main.py imports anyway); port.open_uart gives the stand-in's UART instead of
# machine.UART under asyncio's streams, which the webassembly port lacks.
_MODEM = "from standin.modem import Modem\n_modem = Modem(%d, %d)\ndel Modem"
_QUEUE = """\
from cellmqtt.store import Store
_queue = Store(%r, %d, %d, %d)
for _ in range(%d):
    _queue.append({"uptime_s": 0, "battery_mv": 4100})
del Store, _queue, _
"""
_UART = 'sys.modules["cellmqtt.port"].open_uart = _modem.open_uart'
# A step that starts with "await " is awaited: through runPythonAsync on the webassembly
# port, whose asyncio runs on the JS event loop; run_until_complete on the unix port.
_RUN = "await asyncio.create_task(_modem.run(_held.pop()))"
_PEAK = """\
if _modem.unknown:
    raise RuntimeError("the stand-in modem has no answer for %r" % _modem.unknown)
print("PEAK", _modem.peak, _modem.samples, _modem.readings)
"""


class FootprintError(Exception):
    pass


def _job(imports, before=(), after=()):
    """The steps of one figure: three heap readings (stand-ins, stdlib, figure)."""
    steps = [_SETUP] + list(before) + [_COLLECT, _READ, _STDLIB, _COLLECT, _READ]
    steps += list(imports) + [_COLLECT, _READ] + list(after)
    return steps


def _import(name):
    return "__import__(%r)" % name  # binds no name in the measured globals


def _merged(base, changes):
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(base[key], value) if type(value) is dict else value
    return out


def _boot_steps(root, config):
    """The step writing config.json, and boot.py's and main.py's sources."""
    write = "with open('config.json', 'w') as f:\n    f.write(%r)\ndel f" % json.dumps(config)
    sources = []
    for name in ("boot.py", "main.py"):
        with open(os.path.join(root, name)) as f:
            sources.append(f.read())
    return write, sources


def _example_config(changes):
    """config.example.json with changes merged in."""
    with open(EXAMPLE_CONFIG) as f:
        return _merged(json.load(f), changes)


def boot_job(root, transport):
    """boot.py and main.py as a board runs them, then the window's imports."""
    changes, window = TRANSPORTS[transport]
    write, sources = _boot_steps(root, _example_config(changes))
    return _job(sources + [_import(name) for name in window], before=[write], after=[_STARTED])


def boot_peak_job(root, transport):
    """boot.py and main.py with the config checker kept loaded: the boot at its highest."""
    write, sources = _boot_steps(root, _example_config(TRANSPORTS[transport][0]))
    return _job([_HOLD_CHECKER] + sources, before=[write], after=[_STARTED, _CHECKER_HELD])


def window_job(root):
    """The board's wake that uploads: 4 readings queued on earlier wakes, boot.py and
    main.py, then main.py's duty cycle run until it deep-sleeps: the fifth reading, one
    upload window over the stand-in modem, the memory watchdog's sample, the window's line."""
    config = _example_config(WINDOW_CONFIG)
    write, sources = _boot_steps(root, config)
    pins, queue = config["pins"], config["queue"]
    modem = _MODEM % (pins["pwrkey"], pins["status"])
    fill = _QUEUE % (queue["path"], queue["max_readings"], queue["max_bytes"], queue["max_reading_bytes"],
                     WINDOW_READINGS - 1)
    return _job([fill] + sources, before=[write, modem],
                after=[_STARTED, _UART, _RUN, _PEAK, _COLLECT, _READ])


def _cost(before, after, entry_bytes):
    return after[0] - before[0] - (after[2] - before[2]) + (after[1] - before[1]) * entry_bytes


def _parse(label, out, entry_bytes):
    """(version, stdlib bytes, figure bytes, cellmqtt modules loaded or None, window or
    None) from a job's output. The qstr pools grow by doubling, so what one import costs
    in pool depends on how full the pool was before it: each new qstr counts its entry's
    bytes instead. A window job's window: {"boot", "peak", "samples"}, the heap in use
    after boot and the highest live heap in the window, on the figure's baseline, and
    how many samples the peak is the highest of."""
    version = imports = peak = outcome = None
    readings = _readings(out)
    for line in out.splitlines():
        if line.startswith("PORT ") and version is None:
            version = line[5:]
        elif line.startswith("IMPORTS "):
            imports = line[8:].split()
        elif line.startswith("PEAK "):
            peak = [int(word) for word in line[5:].split()]
        elif line.startswith("window "):
            outcome = line
    expected = 3 if peak is None else 4
    if len(readings) != expected or any(len(reading) != 3 for reading in readings):
        raise FootprintError("%s: expected %d heap readings, got:\n%s" % (label, expected, out))

    window = None
    if peak is not None:
        delivered = outcome is not None and outcome.startswith("window 1 ok delivered=%d " % WINDOW_READINGS)
        if not delivered or peak[2] != WINDOW_READINGS:  # as the device and the broker count
            raise FootprintError("%s: the window did not deliver %d readings:\n%s" % (label, WINDOW_READINGS, out))
        base, boot, after = readings[1:]
        # never less than the truth: the qstrs of the whole window at their entries' size,
        # and a pool it grew in full
        at_peak = [peak[0], after[1], boot[2]]
        window = {"boot": _cost(base, boot, entry_bytes), "peak": _cost(base, at_peak, entry_bytes),
                  "samples": peak[1]}
    return (version, _cost(readings[0], readings[1], entry_bytes), _cost(readings[1], readings[2], entry_bytes),
            imports, window)


def _readings(out):
    """[[heap in use, qstrs, qstr pool bytes], ...] of every reading in a job's output."""
    readings = []
    for line in out.splitlines():
        if line.startswith("MEM "):
            readings.append([int(line[4:])])
        elif line.startswith("qstr pool:") and readings:
            info = dict(item.strip().split("=") for item in line[10:].split(","))
            readings[-1] += [int(info["n_qstr"]), int(info["n_total_bytes"]) - int(info["n_str_data_bytes"])]
    return readings


def outputs_32(root, jobs):
    """{label: what the job printed} on the webassembly port."""
    node = shutil.which("node")
    if node is None or not os.path.isdir(NPM_PACKAGE):
        raise FootprintError("the 32-bit MicroPython (node and its npm package) is missing: run `make deps`")
    request = {"heapsize": HEAP_BYTES, "root": root, "jobs": [steps for _, steps in jobs]}
    try:
        result = subprocess.run([node, NODE_RUNNER], input=json.dumps(request), capture_output=True,
                                text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise FootprintError("the webassembly port did not finish within %d s" % TIMEOUT_S)
    answers = result.stdout.splitlines()
    if result.returncode != 0 or len(answers) != len(jobs):
        raise FootprintError("node failed (exit %d):\n%s%s" % (result.returncode, result.stdout, result.stderr))
    outputs = {}
    for (label, _), answer in zip(jobs, answers):
        reply = json.loads(answer)
        if reply["error"]:
            raise FootprintError("%s on 32-bit:\n%s%s" % (label, reply["out"], reply["error"]))
        outputs[label] = reply["out"]
    return outputs


def run_32(root, jobs):
    """{label: _parse(...)} on the webassembly port."""
    return {label: _parse(label, out, QSTR_ENTRY_32) for label, out in outputs_32(root, jobs).items()}


def outputs_64(root, jobs, work):
    """The same on the unix port: a process per job, in a fresh copy of root."""
    if not os.path.exists(MICROPYTHON):
        raise FootprintError("the MicroPython unix port is missing: run `make deps`")
    outputs = {}
    for label, steps in jobs:
        board = shutil.copytree(root, os.path.join(tempfile.mkdtemp(dir=work), "board"))
        with open(board + ".json", "w") as f:
            json.dump(steps, f)
        command = [MICROPYTHON, "-X", "heapsize=%d" % HEAP_BYTES, UNIX_RUNNER, board + ".json"]
        try:
            result = subprocess.run(command, cwd=board, capture_output=True, text=True,
                                    timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise FootprintError("%s did not finish within %d s on the unix port" % (label, TIMEOUT_S))
        if result.returncode != 0:
            raise FootprintError("%s on 64-bit:\n%s%s" % (label, result.stdout, result.stderr))
        outputs[label] = result.stdout
    return outputs


def run_64(root, jobs, work):
    return {label: _parse(label, out, QSTR_ENTRY_64) for label, out in outputs_64(root, jobs, work).items()}


def own_shares(root, order, work):
    """{module: {"own_32", "own_64"}}: the modules imported one after another in `order`
    (each after what it imports) in one interpreter, each one's cost on top of the others."""
    # the check once before the baseline: its own names are then no module's cost
    steps = [_SETUP, _LOADED % ("", ""), _COLLECT, _READ, _STDLIB, _COLLECT, _READ]
    for name in order:
        steps += [_LOADED % (name, name), _import(name), _COLLECT, _READ]
    jobs = [("own shares", steps)]
    shares: dict = {name: {} for name in order}
    for bits, out, entry in (("32", outputs_32(root, jobs)["own shares"], QSTR_ENTRY_32),
                             ("64", outputs_64(root, jobs, work)["own shares"], QSTR_ENTRY_64)):
        readings = _readings(out)[1:]
        if len(readings) != len(order) + 1:
            raise FootprintError("own shares on %s-bit: expected %d heap readings, got:\n%s" % (
                bits, len(order) + 1, out))
        loaded = {line[7:] for line in out.splitlines() if line.startswith("LOADED ")}
        for name, before, after in zip(order, readings, readings[1:]):
            # one its package loaded already (port._mp) is in the package's share: reading
            # the heap twice around nothing gives a few bytes either way, not its cost
            shares[name]["own_" + bits] = 0 if name in loaded else _cost(before, after, entry)
    return shares


def _module_name(relative):
    name = relative[:-3].replace("/", ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def _mpy_path(root, name):
    base = os.path.join(root, "lib", *name.split("."))
    return base + ".mpy" if os.path.exists(base + ".mpy") else os.path.join(base, "__init__.mpy")


def _with_standins(root):
    shutil.copytree(os.path.join(FOLDER, "standin"), os.path.join(root, "standin"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _stage(work):
    """The board's files as `make deploy` ships them, a CA for broker.tls, the stand-ins."""
    root = os.path.join(work, "board")
    with contextlib.redirect_stdout(io.StringIO()):  # its per-file lines are not this table
        _, failures = mpy_build.build(root)
    if failures:
        raise FootprintError("mpy-cross failed:\n" + "\n".join(failures))
    shutil.copy(certs.make_pki(os.path.join(work, "pki"))["ca"], os.path.join(root, CA_FILE))
    return _with_standins(root)


def _stage_lib(work, lib):
    """Every .py under lib compiled into a board's /lib, the stand-ins beside it."""
    root = os.path.join(work, "board")
    for folder, _, names in os.walk(lib):
        for name in names:
            if name.endswith(".py"):
                relative = os.path.relpath(os.path.join(folder, name), lib)
                ok, message = mpy_build.compile_file(os.path.join(folder, name),
                                                     os.path.join(root, "lib", relative[:-3] + ".mpy"), relative)
                if not ok:
                    raise FootprintError(message)
    return _with_standins(root)


def _measure(root, jobs, work):
    """(versions and stdlib figures, {label: {"resident_32", "resident_64"}}); a boot job's
    figure also gets "imports", the cellmqtt modules it left loaded; a window job's is
    {"boot_32", "peak_32", "samples_32"} and the same for 64-bit instead."""
    figures_32 = run_32(root, jobs)
    figures_64 = run_64(root, jobs, work)
    first = jobs[0][0]
    results = {"micropython_32": figures_32[first][0], "micropython_64": figures_64[first][0],
               "stdlib": {"resident_32": figures_32[first][1], "resident_64": figures_64[first][1]}}
    figures = {}
    for label, _ in jobs:
        if figures_32[label][4] is not None:
            figures[label] = {"%s_%s" % (name, bits): parsed[label][4][name]
                              for bits, parsed in (("32", figures_32), ("64", figures_64))
                              for name in ("boot", "peak", "samples")}
            continue
        figures[label] = {"resident_32": figures_32[label][2], "resident_64": figures_64[label][2]}
        if figures_32[label][3] is not None:
            figures[label]["imports"] = figures_32[label][3]
    return results, figures


def _module_jobs(names):
    return [("module " + name, _job([_import(name)])) for name in names]


def _module_rows(root, names, figures):
    return {name: dict(figures["module " + name], mpy_bytes=os.path.getsize(_mpy_path(root, name)))
            for name in names}


def measure(work):
    """Every figure of the board's firmware (the JSON above, without budgets)."""
    root = _stage(work)
    names = [_module_name(relative) for relative in lib_sources()]
    jobs = _module_jobs(names) + [("transport " + name, boot_job(root, name)) for name in TRANSPORTS]
    jobs += [("boot peak " + name, boot_peak_job(root, name)) for name in TRANSPORTS]
    jobs.append(("mqtt", _job([_import(name) for name in MQTT_IMPORTS])))
    jobs.append(("window", window_job(root)))
    results, figures = _measure(root, jobs, work)
    results["modules"] = _module_rows(root, names, figures)
    # a module costs more with what it imports than any of those: that order loads each after them
    order = sorted(names, key=lambda name: results["modules"][name]["resident_32"])
    for name, share in own_shares(root, order, work).items():
        results["modules"][name].update(share)
    results["mpy_bytes"] = sum(row["mpy_bytes"] for row in results["modules"].values())
    results["transports"] = {name: figures["transport " + name] for name in TRANSPORTS}
    results["boot_peak"] = {name: {"peak_" + bits: figures["boot peak " + name]["resident_" + bits]
                                   for bits in ("32", "64")} for name in TRANSPORTS}
    results["mqtt"] = figures["mqtt"]
    results["window"] = figures["window"]
    return results


def measure_lib(work, lib, names):
    """The named modules of another library folder, measured the same way."""
    root = _stage_lib(work, lib)
    results, figures = _measure(root, _module_jobs(names), work)
    results["modules"] = _module_rows(root, names, figures)
    return results


def _figure(results, key):
    section, _, name = key.partition(".")
    return results[section][name] if name else results[section]


def headline(figure, bits):
    """A figure's bytes on "32" or "64"-bit: a window's peak, anything else's resident heap."""
    return figure[("peak_" if "peak_32" in figure else "resident_") + bits]


def check(results, budgets):
    """Adds {"budgets": {key: {"budget_32", "figure_32", "ok"}}} to results; True if all hold."""
    verdicts = {}
    for key, budget in budgets.items():
        figure = headline(_figure(results, key), "32")
        verdicts[key] = {"budget_32": budget, "figure_32": figure, "ok": figure <= budget}
    results["budgets"] = verdicts
    return all(verdict["ok"] for verdict in verdicts.values())


def table(results):
    """The figures as text; a budgeted one with its budget and PASS or OVER."""
    def row(label, mpy, key, figure):
        verdict = results["budgets"].get(key)
        text = "%-34s %7s %9s %9d %9d" % (label, mpy, figure.get("own_32", ""), headline(figure, "32"),
                                          headline(figure, "64"))
        if verdict:
            text += "  %s budget %d" % ("PASS" if verdict["ok"] else "OVER", verdict["budget_32"])
        return text

    lines = ["heap in use after gc.collect(), bytes, on MicroPython %s webassembly (32-bit) and "
             "%s unix (64-bit)" % (results["micropython_32"], results["micropython_64"]), "",
             "%-34s %7s %9s %9s %9s" % ("module (own: itself alone; then with", ".mpy", "own 32", "32-bit",
                                        "64-bit"), "%-34s" % "what it imports, on 32 and 64-bit)"]
    for name, figure in sorted(results["modules"].items()):
        lines.append(row(name, figure["mpy_bytes"], "modules." + name, figure))
    if "mpy_bytes" in results:
        lines.append("%-34s %7d" % ("lib/ in total", results["mpy_bytes"]))
    lines.append(row("MicroPython's asyncio, json, ...", "", "stdlib", results["stdlib"])
                 + "  (loaded before each figure, not in it)")
    if "transports" in results:
        lines.append("")
        for name, figure in results["transports"].items():
            lines.append(row("after boot, %s transport" % name, "", "transports." + name, figure))
        for name, figure in results["boot_peak"].items():
            lines.append(row("boot's peak, %s transport" % name, "", "boot_peak." + name, figure)
                         + "  (the checker still loaded)")
        lines.append(row("mqtt client (%s)" % MQTT_IMPORTS[-1], "", "mqtt", results["mqtt"]))
        window = results["window"]
        lines.append(row("live peak of an AT upload window", "", "window", window)
                     + "  (after boot %d / %d; the highest of %d / %d samples)" % (
                         window["boot_32"], window["boot_64"], window["samples_32"], window["samples_64"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.footprint", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a figure is over its budget")
    parser.add_argument("--json", help="where the figures go (default build/footprint.json; "
                                       "with --lib, nowhere unless given)")
    parser.add_argument("--lib", help="measure modules of this folder (laid out like /lib) instead")
    parser.add_argument("--module", action="append", default=[], help="with --lib: a module to measure")
    parser.add_argument("--budget", type=int, help="with --lib: each module's 32-bit budget, bytes")
    args = parser.parse_args(argv)
    if bool(args.lib) != bool(args.module) or (args.budget is not None and not args.lib):
        parser.error("--lib and --module go together, and --budget only with them")
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="footprint-")
    try:
        if args.lib:
            results = measure_lib(work, args.lib, args.module)
            budgets = {} if args.budget is None else {"modules." + name: args.budget for name in args.module}
        else:
            results = measure(work)
            budgets = BUDGETS
    except FootprintError as error:
        print("footprint: %s" % error, file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work)
    ok = check(results, budgets)
    print(table(results))
    path = args.json or (None if args.lib else os.path.join(ROOT, "build", "footprint.json"))
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
            f.write("\n")
    print("%s(%.1f s)" % ("figures in %s " % os.path.relpath(path) if path else "", time.monotonic() - started))
    if args.check and not ok:
        print("over budget: " + ", ".join(key for key, verdict in sorted(results["budgets"].items())
                                          if not verdict["ok"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
