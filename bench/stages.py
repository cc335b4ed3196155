"""The bench's measurements, one method per group of figures; __main__ runs them."""

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

from bench import minimum, modem_min
from bench import report as r
from bench.helper import DOWNLINK_BYTES
from bench.mp import codec
from bench.mp.harness import Workload
from bench.runner import MICROPYTHON
from tools import footprint, romfs
from tools.board_files import ROOT
from tools.certs import make_pki
from tools.services import MOSQUITTO, TlsMosquitto
from tools.soak_report import ONE_TIME_BYTES

# column -> (runner module, its options)
CLIENTS = {
    r.OURS: ("run_ours", {}),
    r.OURS_MODEM: ("run_ours", {"link": "modem"}),
    r.SIMPLE: ("run_umqtt", {"variant": "simple"}),
    r.ROBUST: ("run_umqtt", {"variant": "robust"}),
    r.ASYNC: ("run_mqtt_async", {}),
}
BLOCKING = (r.SIMPLE, r.ROBUST)
APN = "internet"


class Plan:
    """How many of everything: 1000 cycles only where a figure needs them (our retained
    bytes), fewer where a figure is steady; the counts are in the figures' names."""

    def __init__(self):
        self.warmup = 3
        self.peak_cycles = 10
        self.time_cycles = 10
        self.retained_cycles = {r.OURS: 1000, r.OURS_MODEM: 300}
        self.retained_peers = 200
        self.floor_cycles = 100
        self.windows = 3  # the on-time of one window moves by about 100 ms from run to run
        self.board_windows = 200  # per probe of the smallest heap that runs the simulated board
        self.board_heap_kib = (96, 512)  # the search's bounds (a heap outside them is a failure)
        self.board_heap_step_kib = 8
        self.modem_scale = 1.0  # real time: our own processing counts as it would on a board
        self.codec_seconds = 0.5
        self.codec_rounds = 3
        self.flash_windows = 192  # two days of 15-minute windows of 1-minute readings

    def retained(self, column):
        return self.retained_cycles.get(column, self.retained_peers)


class Bench:
    def __init__(self, runner, plan, link_emulator, log=print):
        self.runner = runner
        self.plan = plan
        self.link_emulator = link_emulator
        self.results = r.Results()
        self.live = {}
        self.log = log

    def _run(self, column, mode, cycles, qos=1, warmup=None, **extra):
        module, options = CLIENTS[column]
        options = dict(options, mode=mode, cycles=cycles, qos=qos, **extra)
        options["warmup"] = self.plan.warmup if warmup is None else warmup
        if column == r.OURS_MODEM:
            options["modem"] = self.link_emulator.uart
        figures = self.runner.run(module, **options)
        self.log("  %-15s %-5s qos %d: %s" % (column, mode, qos, _brief(figures)))
        return figures

    # heap

    def heap_peaks(self):
        for qos in (1, 0):
            name = "heap peak of a cycle, QoS %d (max of %d)" % (qos, self.plan.peak_cycles)
            for column in CLIENTS:
                figures = self._run(column, "peak", self.plan.peak_cycles, qos, nodelay=1)
                if qos == 1:
                    self.live[column] = figures["live"]
                self.results.add(name, column, figures["peak"], "B")
        name = "heap peak of a cycle, QoS 1 (max of %d)" % self.plan.peak_cycles
        ours = self.results.get(name, r.OURS)
        simple = self.results.get(name, r.SIMPLE).value
        family = self.results.get(name, r.ASYNC).value
        ours.target = "<= 1.25 x umqtt.simple, < mqtt_async"
        ours.passed = ours.value <= 1.25 * simple and ours.value < family
        ours.note = "%.2f x umqtt.simple, %.2f x mqtt_async" % (ours.value / simple, ours.value / family)

    def retained(self):
        name = "retained after gc per cycle (runs of %s cycles)" % " / ".join(
            str(self.plan.retained(column)) for column in CLIENTS)
        for column in CLIENTS:
            cycles = self.plan.retained(column)
            figures = self._run(column, "time", cycles, nodelay=1, track=1)
            kept = figures["retained"]
            span = figures["retained_span"]
            figure = self.results.add(name, column, round(kept / span, 2), "B",
                                      note="floor %+d B from the 2nd quarter to the 2nd half" % kept)
            if column in (r.OURS, r.OURS_MODEM):
                figure.target = "0 B (a one-time step <= %d B allowed)" % ONE_TIME_BYTES
                figure.passed = kept <= ONE_TIME_BYTES

    def _floor_run(self, column):
        """The runner module of column and its options for the smallest-heap search."""
        module, options = CLIENTS[column]
        return module, dict(options, mode="time", cycles=self.plan.floor_cycles, warmup=0, qos=1, nodelay=1)

    def floors(self):
        name = "smallest heap (-X heapsize) for %d cycles, QoS 1" % self.plan.floor_cycles
        for column in CLIENTS:
            module, options = self._floor_run(column)
            if column == r.OURS_MODEM:
                options["modem"] = self.link_emulator.uart
            kib, probes = self.runner.smallest_heap(module, self.live[column], **options)
            self.log("  %-15s floor %d KiB (%d probes)" % (column, kib, probes))
            self.results.add(name, column, kib, "KiB")
        # the same with the code in flash (a ROMFS image, as frozen code would be): what is
        # left is the clients' objects and names, not their bytecode
        image = os.path.join(os.path.dirname(self.runner.build_dir), "bench-romfs.img")
        size = romfs.pack_folder(self.runner.build_dir, image)
        name += ", code in ROMFS (the image's %.1f KiB taken off)" % (size / 1024)
        for column in (r.OURS, r.SIMPLE, r.ASYNC):
            module, options = self._floor_run(column)
            kib, probes = self.runner.smallest_heap("from_romfs", self.live[column] + size,
                                                    env={"BENCH_IMAGE": image, "BENCH_RUNNER": module}, **options)
            self.log("  %-15s floor from ROMFS %d KiB - %.1f KiB (%d probes)" % (column, kib, size / 1024, probes))
            self.results.add(name, column, round(kib - size / 1024), "KiB")

    # wire and wall time

    def wire_and_time(self):
        for qos in (1, 0):
            wire = "MQTT bytes per cycle, QoS %d (sent + received)" % qos
            wall = "cycle wall time, QoS %d (mean of %d, default sockets)" % (qos, self.plan.time_cycles)
            least = minimum.cycle(Workload("0000", qos), DOWNLINK_BYTES)
            floor = least["sent"] + least["received"]
            self.results.reference(wire, "protocol minimum", "protocol-minimum", floor, "B").note = (
                "%d sent + %d received" % (least["sent"], least["received"]))
            for column in CLIENTS:
                figures = self._run(column, "time", self.plan.time_cycles, qos)
                cycles = figures["cycles"]
                sent = figures["sent_total"] / cycles
                received = figures["received_total"] / cycles
                figure = self.results.add(wire, column, round(sent + received, 1), "B",
                                          note="%.0f sent + %.0f received, %.3f x minimum" % (
                                              sent, received, (sent + received) / floor))
                if column in (r.OURS, r.OURS_MODEM):
                    figure.target = "<= 1.02 x minimum"
                    figure.passed = sent + received <= 1.02 * floor
                self.results.add(wall, column, round(figures["wall_ms"] / cycles, 1), "ms")

    # the modem

    def modem(self, emulator, broker):
        plan = self.plan
        env = {"CELLMQTT_TIME_SCALE": repr(plan.modem_scale)}
        ours = []
        least = []
        for _ in range(plan.windows):
            emulator.ask("RESET")
            self.runner.run("window", env=env, modem=emulator.uart, control=emulator.control, qos=1)
            ours.append(_window_state(emulator))
            emulator.ask("RESET")
            modem_min.run_window(emulator, broker, Workload(self.runner.tag(), 1), APN, plan.modem_scale)
            least.append(_window_state(emulator))
            self.log("  window: ours %s, minimal %s" % (ours[-1], least[-1]))
        # the targets of the modem issue: a dozen commands, 1.2 x the bytes, 1.02 x the on-time
        for key, name, unit, most, times in (
                ("commands", "AT commands per upload window", "", 12, None),
                ("uart_bytes", "UART bytes per upload window (both ways)", "B", None, 1.20),
                ("powered_ms", "modem on-time per upload window (latency model)", "ms", None, 1.02)):
            value = sum(state[key] for state in ours) / len(ours)
            floor = sum(state[key] for state in least) / len(least)
            self.results.reference(name, "manual minimum", "manual-minimum", round(floor, 1), unit)
            figure = self.results.add(name, r.OURS_MODEM, round(value, 1), unit,
                                      note="%.2f x the minimal sequence" % (value / floor))
            if most is not None:
                figure.target = "<= %d" % most
                figure.passed = value <= most
            else:
                figure.target = "<= %.2f x minimum" % times
                figure.passed = value <= times * floor

    # the firmware on a 32-bit MicroPython (make footprint)

    def footprint(self):
        work = tempfile.mkdtemp(prefix="bench-footprint-")
        try:
            figures = footprint.measure(work)
        finally:
            shutil.rmtree(work)
        footprint.check(figures, footprint.BUDGETS)
        transports = figures["transports"]
        rows = [("32-bit heap after boot, AT transport", r.OURS_MODEM, "transports.at", transports["at"]),
                ("32-bit heap after boot, TLS transport", r.OURS_MODEM, "transports.tls", transports["tls"]),
                ("32-bit heap after boot, PPP transport", r.OURS_MODEM, "transports.ppp", transports["ppp"]),
                ("32-bit heap at boot's peak (config checker loaded), AT transport", r.OURS_MODEM, "boot_peak.at",
                 figures["boot_peak"]["at"]),
                ("32-bit heap at boot's peak (config checker loaded), TLS transport", r.OURS_MODEM, "boot_peak.tls",
                 figures["boot_peak"]["tls"]),
                ("32-bit heap at boot's peak (config checker loaded), PPP transport", r.OURS_MODEM, "boot_peak.ppp",
                 figures["boot_peak"]["ppp"]),
                ("32-bit heap of the MQTT client with what it imports", r.OURS, "mqtt", figures["mqtt"]),
                ("32-bit live peak of an AT upload window (5 readings, QoS 1)", r.OURS_MODEM, "window",
                 figures["window"])]
        for name, column, key, figure in rows:
            bits_32, bits_64 = footprint.headline(figure, "32"), footprint.headline(figure, "64")
            added = self.results.add(name, column, bits_32, "B", note="64-bit: {:,} B".format(bits_64))
            verdict = figures["budgets"].get(key)
            if verdict is not None:
                added.target = "<= {:,} B".format(verdict["budget_32"])
                added.passed = verdict["ok"]
            self.log("  %s: %d B (64-bit %d B)" % (name, bits_32, bits_64))

    # the simulated board's smallest heap, per transport

    def board_heaps(self):
        """The smallest heap (64-bit unix port, the board's .mpy files) in which the
        simulated board runs board_windows windows with every one ok and every reading
        delivered, for the AT path, modem TLS and PPP, in steps of board_heap_step_kib."""
        plan = self.plan
        name = "smallest heap for %d windows of the simulated board (64-bit), transport %%s" % plan.board_windows
        work = tempfile.mkdtemp(prefix="bench-board-")
        pki = make_pki(os.path.join(work, "pki"))
        broker = TlsMosquitto(pki).start()
        try:
            transports = {"at": ["--time-scale", "0"],
                          "tls": ["--time-scale", "0", "--tls", "--cafile", pki["ca"], "--broker", broker.tls["good"]],
                          "ppp": ["--time-scale", "0", "--transport", "ppp"]}
            for transport, options in transports.items():
                kib, probes = self._smallest_board_heap(options, work)
                self.log("  %s: %s KiB (%d probes)" % (transport, kib, probes))
                self.results.add(name % transport, r.OURS_MODEM, kib, "KiB", "<= 192 KiB (the simulated board's heap)",
                                 kib is not None and kib <= 192)
        finally:
            broker.stop()
            shutil.rmtree(work)

    def _smallest_board_heap(self, options, work):
        """(KiB, probes): the first heap from the lower bound up that runs, or None if
        none up to the upper bound does. Not a bisection: near its smallest heap a board
        fails at scattered sizes (docs/memory.md: TLS ran at 192 KiB and stopped at boot at
        200), so a bisection could answer a size above one that runs. A heap too small
        fails in seconds."""
        step = self.plan.board_heap_step_kib
        low, high = self.plan.board_heap_kib
        probes = 0
        for kib in range(low, high + 1, step):
            probes += 1
            if self._board_runs(kib, options, work):
                return kib, probes
        return None, probes

    def _board_runs(self, kib, options, work):
        report = os.path.join(work, "board.json")
        command = [sys.executable, "-m", "tools.simboard", "--runtime", "micropython", "--quiet",
                   "--cycles", str(self.plan.board_windows), "--heap", "%dK" % kib, "--json", report] + options
        if os.path.exists(report):
            os.remove(report)
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
        runs = done.returncode == 0 and os.path.exists(report)
        if runs:
            with open(report) as f:
                figures = json.load(f)
            runs = figures["windows_ok"] == self.plan.board_windows and figures["readings_lost"] == 0
        if not runs:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            self.log("    %d KiB: does not run (exit %d: %s)" % (kib, done.returncode, last[0][:160]))
        return runs

    # flash wear of the simulated board (littlefs on a counting block device)

    def flash(self):
        """Bytes written and blocks erased on the simulated board's 2 MB littlefs, per
        reading and per window, with 15 readings a window (1-minute readings, 15-minute
        uploads), and the flash's projected life at that rate (tools/simboard.py)."""
        report = os.path.join(tempfile.mkdtemp(prefix="bench-flash-"), "board.json")
        command = [sys.executable, "-m", "tools.simboard", "--runtime", "micropython", "--quiet", "--time-scale",
                   "0", "--readings-per-window", "15", "--cycles", str(self.plan.flash_windows), "--json", report]
        try:
            subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800, check=True)
            with open(report) as f:
                figures = json.load(f)
        finally:
            shutil.rmtree(os.path.dirname(report))
        where = "(littlefs, 2 MB, 15 readings a window)"
        for key, name, unit in (("flash_bytes_per_reading", "flash bytes written per reading", "B"),
                                ("flash_erases_per_reading", "flash blocks erased per reading", ""),
                                ("flash_bytes_per_window", "flash bytes written per upload window", "B"),
                                ("flash_erases_per_window", "flash blocks erased per upload window", "")):
            self.results.add("%s %s" % (name, where), r.OURS_MODEM, figures[key], unit)
        years = figures["flash_life_years_levelled"]
        self.results.add("flash life at 1-minute readings, 15-minute uploads (100,000 erases a block, levelled)",
                         r.OURS_MODEM, years, "years", ">= 20 years", years >= 20,
                         note="most-erased block: %d erases in %d windows" % (
                             figures["flash_most_erased_block"][1], figures["cycles"]))
        self.log("  flash: %s B and %s erases a reading, %s years" % (
            figures["flash_bytes_per_reading"], figures["flash_erases_per_reading"], years))

    # codec

    def codecs(self):
        from bench import codec_paho  # paho-mqtt comes with requirements-bench.txt, which make bench installs

        plan = self.plan
        best = {"ours encode": 0, "ours decode": 0, "paho encode": 0, "paho decode": 0}
        for _ in range(plan.codec_rounds):  # interleaved: a busy machine slows both alike
            best["ours encode"] = max(best["ours encode"], codec.encode_rate(plan.codec_seconds))
            best["paho encode"] = max(best["paho encode"], codec_paho.encode_rate(plan.codec_seconds))
            best["ours decode"] = max(best["ours decode"], codec.decode_rate(plan.codec_seconds))
            best["paho decode"] = max(best["paho decode"], codec_paho.decode_rate(plan.codec_seconds))
        for job in ("encode", "decode"):
            name = "codec %s, CPython %s (PUBLISH 200 B, best of %d)" % (
                job, platform.python_version(), plan.codec_rounds)
            self.results.reference(name, "paho-mqtt", "paho-mqtt", int(best["paho " + job]), "pkt/s")
            ours = best["ours " + job]
            self.results.add(name, r.OURS, int(ours), "pkt/s", ">= paho-mqtt",
                             ours >= best["paho " + job], "%.2f x paho-mqtt" % (ours / best["paho " + job]))
        figures = self.runner.run("codec", seconds=plan.codec_seconds, rounds=plan.codec_rounds)
        for job in ("encode", "decode"):
            name = "codec %s, MicroPython unix port (best of %d)" % (job, plan.codec_rounds)
            self.results.add(name, r.OURS, figures[job], "pkt/s")
        self.log("  codec: %s; MicroPython %s" % ({k: int(v) for k, v in best.items()}, _brief(figures)))


def _window_state(emulator):
    state = emulator.state()
    if state["powered"] or state["links"]:
        raise RuntimeError("the window left the modem on or a link open: %r" % state)
    return {"commands": state["commands"], "uart_bytes": state["uart_rx_bytes"] + state["uart_tx_bytes"],
            "powered_ms": state["powered_ms"]}


def _brief(figures):
    return " ".join("%s=%s" % (key, value) for key, value in sorted(figures.items())
                    if not key.endswith("_total") and key != "done" and not key.startswith("_"))


def versions(runner, peer_versions):
    """What ran, for the table's preamble."""
    mosquitto = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, check=False)
    first = (mosquitto.stdout or mosquitto.stderr).splitlines()
    script = "import sys; print(\"%d.%d.%d\" % sys.implementation.version[:3])"
    micropython = subprocess.run([MICROPYTHON, "-c", script],
                                 capture_output=True, text=True, check=False).stdout.strip()
    found = {"CPython": platform.python_version(), "MicroPython": micropython,
             "mosquitto": first[0].split()[-1] if first else "?",
             "paho-mqtt": _paho_version()}
    found.update(peer_versions)
    return found


def _paho_version():
    import paho.mqtt

    return getattr(paho.mqtt, "__version__", "?")

