"""The simulated board: the unmodified boot.py and main.py on a PC, under CPython or
the MicroPython unix port (heap capped like an ESP32), with the SIM7600 emulator as
the modem (power pins included) and a real broker; with faults, a soak tool.

  python -m tools.simboard [--runtime cpython|micropython] [--cycles 20]
                           [--time-scale 0.002] [--broker HOST:PORT|mosquitto] [--json FILE]
                           [--tls --cafile F] [--secrets F] [--transport at|ppp]
                           [--fault-rate R] [--seed N] [--csv FILE] [--plot FILE] [--quiet]
                           [--quirk NAME|all ...]
                           [--from-source | --romfs] [--port unix|esp32]
                           [--flash littlefs|folder] [--readings-per-window 5]
                           [--clock real|virtual]

Prints the firmware's line for each upload window and a summary, the leak verdict
last. A subscriber of its own (mosquitto_sub) checks delivery independently of the
firmware. The board process is restarted when it resets (exit code 75), as an MCU
would. With --fault-rate, that share of the windows gets a random emulator fault
(tools/soak_faults.py) armed while the modem is off, or a random quirk (a field
behaviour: such a window must go through); --quirk NAME|all gives the emulator quirks
for the whole run (python -m tools.sim7600_emu --list-quirks); --csv and --plot record each
window (tools/soak_report.py). --tls --cafile F --broker HOST:PORT makes the board
use TLS (through the modem's SSL) to that listener, verified against the CA in F;
--secrets F puts F on the flash as secrets.json (MQTT user name and password).
--transport ppp makes the board dial a data call and use PPP instead of the modem's
TCP stack (on a PC, the port's PPP stand-in: sockets go straight to the broker).
Under MicroPython the board's flash holds the library as the .mpy files `make deploy`
ships (tools/mpy_build.py); --from-source runs lib/*.py instead (as CPython always
does), --romfs runs it from a ROMFS image (tools/romfs.py) mounted at /rom through
vfs.VfsRom (the heap is enlarged by the image's size: on a PC the image is a heap
block, on a board it is flash). --port esp32 runs the board's own port layer
(port/esp32.py) on stand-ins for machine and network (tools/esp32_standin: the UART
over the emulator's TCP port, pins over its control port, reset and deep sleep as
this board's reset). Under MicroPython the board's flash is a 2 MB littlefs image
(tools/board_start.py --flash) whose block device counts bytes written and erases per
block: the summary gives them per reading and per window, the most-erased block, and
the flash's projected life at one reading a minute (ERASE_CYCLES per block); --flash
folder keeps a host folder instead (as CPython always does). --readings-per-window N:
a window every N readings (default 5; 15 is a 15-minute upload of 1-minute readings).
--clock virtual (the default with --time-scale 0): the board's ticks, RTC and sleeps and
the emulator's clock share one clock file, on which the sleeps between windows are
skipped, not waited (a 60 s sampling period moves the clock 60 s at once), a window
runs at 20 times the wall clock (at time scale 0), and ticks_ms() wraps at 2**30 as on
a board (starting 5 minutes before a wrap); the RTC survives the board's resets either
way. The board reads STATUS from a file the emulator keeps it in (--inputs), as a pin
is read, without a control request per poll.
Exits non-zero when an invariant fails.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from tools import mpy_build, romfs, soak_report
from tools.board_files import LIB, ROOT
from tools.services import Amqtt, EmulatorProcess, Mosquitto, stop_process
from tools.sim7600_emu import quirks
from tools.sim7600_emu.model import BATTERY_MV, BATTERY_NOISE_MV, Clock, clock_file, input_file
from tools.soak_faults import Injector, Schedule

sys.path.insert(0, LIB)
from cellmqtt.port import RESET_EXIT_CODE  # noqa: E402
from cellmqtt.store import Store  # noqa: E402
from tools.fleet.messages import dated_later  # noqa: E402  (it checks readings with cellmqtt's config)

MICROPYTHON = os.path.join(ROOT, ".venv-micropython", "bin", "micropython")
ESP32_STANDIN = os.path.join(ROOT, "tools", "esp32_standin")
DEVICE_ID = "sim0001"
_SETTLE_S = 1.0  # for the subscriber to receive what the broker acknowledged last
_PROGRESS_LINES = 20  # --quiet: a progress line every 1/20th of the run


BOARD_CAFILE = "ca.pem"  # where --cafile goes on the board's flash
ERASE_CYCLES = 100000  # per block of NOR flash
# a virtual clock inside a window at time scale 0: 20 times the wall clock, so a 1 s
# bound on a local answer still leaves a slow emulator 50 ms of real time (port/_pc.py)
WINDOW_RATE = 20


def board_config(broker_address, time_scale, tls=False, transport="at", readings_per_window=5):
    with open(os.path.join(ROOT, "config.example.json")) as f:
        config = json.load(f)
    host, _, port = broker_address.rpartition(":")
    config["broker"].update(host=host, port=int(port))
    if tls:
        config["broker"].update(tls=True, cafile=BOARD_CAFILE)
    config["transport"] = transport
    config["upload"].update(every_n_readings=readings_per_window, period_s=None)
    config["device_id"] = DEVICE_ID
    return config


class Subscriber:
    """mosquitto_sub on the data topics; of each (device, seq) it receives, a digest of
    its content and its ts (None without one), and how many copies came per device."""

    def __init__(self, broker_address, cafile=None):
        host, _, port = broker_address.rpartition(":")
        tls = ["--cafile", cafile] if cafile else []
        self.process = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-h", host, "-p", port, "-t", "cellmqtt/+/data", "-q", "1",
             "-i", "simboard-check", "-d"] + tls, stdout=subprocess.PIPE, text=True)
        self.receptions = {}  # device: readings received, copies included
        self.conflicts = 0  # a (device, seq) received again with other content (a ts added is not)
        self.battery_mv = None  # [least, most] battery_mv of the readings received
        # (device, seq): a digest of its first copy, its ts, and the copy itself while it
        # has none (to know it again dated: a decade's digests fit, its dicts would not)
        self._seen = {}
        self.subscribed = threading.Event()  # set at each SUBACK (after a broker restart too)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self.subscribed.wait(10):
            self.stop()
            raise RuntimeError("mosquitto_sub did not subscribe")

    def _read(self):
        for line in self.process.stdout:
            if line.startswith("Client ") and "SUBACK" in line:
                self.subscribed.set()
            elif line.startswith("{"):
                message = json.loads(line)
                for reading in message["readings"]:
                    self._received(message["device"], reading)

    def _received(self, device, reading):
        key = (device, reading["seq"])
        digest = hash(json.dumps(reading, sort_keys=True))
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = (digest, reading.get("ts"), None if "ts" in reading else reading)
        elif seen[2] is not None and dated_later(seen[2], reading):  # sent before the clock was known, again after
            self._seen[key] = (digest, reading["ts"], None)
        else:
            self.conflicts += seen[0] != digest
        self.receptions[device] = self.receptions.get(device, 0) + 1
        if "battery_mv" in reading:
            mv = reading["battery_mv"]
            least, most = self.battery_mv or (mv, mv)
            self.battery_mv = [min(least, mv), max(most, mv)]

    def seqs(self, device):
        """The seqs of `device` received, each once (while it still receives, too)."""
        return set(seq for sender, seq in list(self._seen) if sender == device)

    def stamps(self, device):
        """The ts of each reading of `device` received (None without one), in seq order."""
        return [seen[1] for key, seen in sorted(list(self._seen.items())) if key[0] == device]

    def stop(self):
        stop_process(self.process)
        self._thread.join(5)


def time_figures(stamps):
    """ts in seq order (None: none): how many lack one after the first that has one (the
    first sync), and how many are earlier than the ts before them."""
    missing = out_of_order = 0
    last = None
    for ts in stamps:
        if ts is None:
            missing += last is not None
        else:
            out_of_order += last is not None and ts < last
            last = ts
    return {"readings_without_ts_after_sync": missing, "ts_out_of_seq_order": out_of_order}


def _parse_window(line):
    head, _, error = line.rstrip("\n").partition(" error=")
    words = head.split()
    fields = {}
    for word in words[3:]:
        key, _, value = word.partition("=")
        if value.isdigit():
            fields[key] = int(value)
    fields["ok"] = words[2] == "ok"
    fields["error"] = error
    return fields


class Bench:
    """Around the board: arms each window's fault, checks the emulator after each
    window, and keeps one record per window (in memory and in the CSV)."""

    def __init__(self, args, emulator, figures):
        self.args = args
        self.figures = figures
        self.schedule = Schedule(args.fault_rate, args.seed, quirks.parse(args.quirk))
        self.injector = Injector(emulator.control)
        self.csv = soak_report.CsvLog(args.csv) if args.csv else None
        self.records = []
        self.pending = None  # the fault armed for the coming window

    def arm_next(self):
        self.pending = self.schedule.next()
        if not self.injector.arm(self.pending, self.figures["cycles"] + 1):
            self.figures["faults_armed_late"] += 1

    def window_done(self, line):
        """A window's line: its figures, how it left the modem, the fault cleared."""
        figures = self.figures
        state = self.injector.between_windows(figures["cycles"] + 1)
        fault = self.pending
        self.pending = None
        figures["cycles"] += 1
        if figures["cycles"] < self.args.cycles:
            self.arm_next()  # first: the board's next window waits for it, not for the records
        window = _parse_window(line)
        figures["windows_ok"] += window["ok"]
        figures["mem_used"].append(window["used"])
        figures["mem_largest_free"].append(window["largest"])
        figures["mem_peak"] = max(figures["mem_peak"], window["peak"])
        figures["modem_on_ms"].append(window["on_ms"])
        figures["ledger_leaks"] += window["ledger"]
        if state is None:  # no UART connection ended for it: the check has nothing to read
            figures["windows_unrecorded"] += 1
        else:
            figures["modem_links_open_after_power_off"] += len(state["links"])
            figures["modem_on_after_window"] += state["powered"]
            figures["data_calls_up_after_window"] += state["call"] != "none"
        if fault is not None:
            figures["faults_injected"] += 1
            figures["faults"][fault.name] = figures["faults"].get(fault.name, 0) + 1
        if not window["ok"] and (fault is None or fault.quirk):  # a quirk is no excuse
            figures["failed_without_fault"] += 1
        record = {"cycle": figures["cycles"], "mem_used": window["used"], "mem_peak": window["peak"],
                  "mem_largest_free": window["largest"],
                  "ledger": window["ledger"], "queue_depth": window["queued"],
                  "modem_on_ms": window["on_ms"], "fault": fault.name if fault else "",
                  "point": fault.point if fault else "", "outcome": "ok" if window["ok"] else "fail",
                  "delivered": window["delivered"], "error": window["error"]}
        self.records.append(record)
        if self.csv is not None:
            self.csv.row(record)
        self._show(line, fault)

    def _show(self, line, fault):
        figures = self.figures
        if not self.args.quiet:
            print(line.rstrip() + ("  [fault: %r]" % fault if fault else ""), flush=True)
        elif figures["cycles"] % max(1, self.args.cycles // _PROGRESS_LINES) == 0:
            print("window %d/%d: %d ok, %d faults injected, %d failed without one, used %d bytes" % (
                figures["cycles"], self.args.cycles, figures["windows_ok"],
                figures["faults_injected"], figures["failed_without_fault"],
                figures["mem_used"][-1]), flush=True)

    def close(self):
        if self.csv is not None:
            self.csv.close()
        self.injector.close()


def _heap_bytes(size):
    units = {"K": 1024, "M": 1024 * 1024}
    return int(size[:-1]) * units[size[-1].upper()] if size[-1:].upper() in units else int(size)


def board_command(args, library, image=None):
    """The board's process: library is a folder to import from, or a ROMFS image;
    image: the flash's littlefs image, or None for the working directory."""
    if args.runtime == "cpython":
        return [sys.executable, os.path.join(ROOT, "tools", "board_start.py"), "--lib", library]
    heap = _heap_bytes(args.heap or ("512K" if args.from_source else "192K"))
    if args.romfs:
        heap += os.path.getsize(library)
    command = [MICROPYTHON, "-X", "heapsize=%d" % heap, os.path.join(ROOT, "tools", "board_start.py"),
               "--romfs" if args.romfs else "--lib", library]
    if args.port == "esp32":
        command += ["--esp32", ESP32_STANDIN]
    if image is not None:
        command += ["--flash", image]
    return command


def unload_flash(command, image, dest):
    """Copy the littlefs image's files to the folder dest; its wear counts (board_start.py)."""
    os.mkdir(dest)
    done = subprocess.run(command + ["--flash", image, "--unload", dest], capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def flash_figures(wear, readings, windows, readings_per_window):
    """Bytes written and erases per reading and per window, the most-erased block, and
    the projected life at one reading a minute: levelled (the erases spread over every
    block, as littlefs's wear levelling tends to in the long run) and by the most-erased
    block of this run (pessimistic for a short one: a hot block has not moved yet)."""
    erases = wear["erases"]
    total = sum(erases)
    windows_a_day = 1440 / readings_per_window
    per_window = total / max(1, windows)
    days = max(1, windows) / windows_a_day
    return {"flash_bytes_written": wear["bytes_written"], "flash_erases": total,
            "flash_bytes_per_reading": round(wear["bytes_written"] / max(1, readings), 1),
            "flash_erases_per_reading": round(total / max(1, readings), 3),
            "flash_bytes_per_window": round(wear["bytes_written"] / max(1, windows), 1),
            "flash_erases_per_window": round(per_window, 3),
            "flash_most_erased_block": [erases.index(max(erases)), max(erases)],
            "flash_blocks_erased": sum(1 for count in erases if count),
            "flash_life_years_levelled": round(ERASE_CYCLES * len(erases) / max(1e-9, per_window * windows_a_day)
                                               / 365.25, 1),
            "flash_life_years_worst_block": round(ERASE_CYCLES * days / max(1, max(erases)) / 365.25, 1)}


def board_library(args, work, flash):
    """What the board imports cellmqtt from: lib/*.py, a ROMFS image, or the .mpy files
    in its flash's lib/ (with the PC halves of the port layer for --port unix)."""
    if args.runtime == "cpython" or args.from_source:
        print("board: %s, library from lib/*.py, port %s" % (args.runtime, args.port), flush=True)
        return LIB
    include_pc = args.port == "unix"
    if args.romfs:
        image = os.path.join(work, "romfs.img")
        size = romfs.build(image, include_pc)
        print("board: micropython, library from a ROMFS image of %d bytes, port %s" % (size, args.port), flush=True)
        return image
    print("board: micropython, library as .mpy files in /lib, port %s" % args.port, flush=True)
    return mpy_build.build_for_pc(flash, include_pc)


def run_board(args, flash, emulator, bench, library, image):
    figures = bench.figures
    env = dict(os.environ, CELLMQTT_MODEM=emulator.uart, CELLMQTT_CONTROL=emulator.control,
               CELLMQTT_TIME_SCALE=str(args.time_scale), CELLMQTT_DEVICE_ID="73696d30303031",
               PYTHONUNBUFFERED="1")  # each window's line at once: the next fault is armed on it
    command = board_command(args, library, image)
    bench.arm_next()  # the modem is off: the first window's fault goes in before the board starts
    while figures["cycles"] < args.cycles:
        board = subprocess.Popen(command, cwd=flash, env=env, stdout=subprocess.PIPE, text=True)
        stopped = False
        try:
            for line in board.stdout:
                if not line.startswith("window "):
                    print(line.rstrip(), flush=True)
                    continue
                bench.window_done(line)
                if figures["cycles"] >= args.cycles:
                    board.send_signal(signal.SIGTERM)
                    stopped = True
            code = board.wait()
        finally:  # a run cut short (Ctrl-C, SIGTERM, a failed check) leaves no board running
            stop_process(board)
            board.stdout.close()
        if stopped:
            return
        if code != RESET_EXIT_CODE:
            raise RuntimeError("the board stopped with exit code %d" % code)
        figures["resets"] += 1
        print("(board reset)", flush=True)


def _options(argv):
    parser = argparse.ArgumentParser(prog="python -m tools.simboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", choices=("cpython", "micropython"), default="micropython",
                        help="the interpreter that runs the board (default %(default)s)")
    parser.add_argument("--cycles", type=int, default=20, help="upload windows to run (default %(default)s)")
    parser.add_argument("--time-scale", type=float, default=0.002,
                        help="1 = real time; applies to the firmware's sleeps and the modem model "
                        "(default %(default)s)")
    parser.add_argument("--broker", help="HOST:PORT of a broker, or mosquitto: a mosquitto of its own "
                        "(default: an embedded amqtt)")
    # 192K from .mpy: each transport (AT, TLS, PPP) runs 1,000 windows there; the whole app
    # compiled from source on the 64-bit port peaks near 256K
    parser.add_argument("--heap", help="MicroPython heap (-X heapsize; default 192K, 512K with --from-source: "
                        "compiling source at run time fragments the heap)")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="share of the upload windows that get a random fault, 0..1 (default 0)")
    parser.add_argument("--quirk", action="append", default=[], metavar="NAME",
                        help="a field behaviour of the emulated modem for the whole run (repeatable; "
                        "all: every one)")
    parser.add_argument("--seed", type=int, help="the fault schedule's seed (default: a random one, printed)")
    parser.add_argument("--csv", help="write one row per window to this file")
    parser.add_argument("--plot", help="draw used memory and ledger size over the windows (PNG)")
    parser.add_argument("--quiet", action="store_true", help="a progress line now and then, not every window")
    parser.add_argument("--tls", action="store_true", help="TLS to the broker (needs --broker and --cafile)")
    parser.add_argument("--cafile", help="the CA certificate (PEM) that signed the broker's certificate")
    parser.add_argument("--secrets", help="a secrets.json for the board (MQTT user name, password)")
    parser.add_argument("--transport", choices=("at", "ppp"), default="at",
                        help="the modem's TCP stack (at) or a data call with PPP (ppp) (default %(default)s)")
    loading = parser.add_mutually_exclusive_group()
    loading.add_argument("--from-source", action="store_true", help="lib/*.py, not the .mpy files (debugging)")
    loading.add_argument("--romfs", action="store_true", help="the library from a ROMFS image (vfs.VfsRom)")
    parser.add_argument("--flash", choices=("littlefs", "folder"),
                        help="the board's flash: a littlefs image whose writes and erases are counted, or "
                        "a host folder (default: littlefs under MicroPython; CPython has only folder)")
    parser.add_argument("--readings-per-window", type=int, default=5,
                        help="readings between upload windows (default %(default)s)")
    parser.add_argument("--clock", choices=("real", "virtual"),
                        help="virtual: sleeps between windows skip time instead of waiting it "
                        "(default: virtual with --time-scale 0, else real)")
    parser.add_argument("--port", choices=("unix", "esp32"), default="unix",
                        help="the port layer: the PC's (unix) or the board's (esp32) on stand-ins "
                        "(default %(default)s)")
    args = parser.parse_args(argv)
    if args.runtime == "cpython" and (args.romfs or args.port == "esp32" or args.flash == "littlefs"):
        parser.error("--romfs, --port esp32 and --flash littlefs need --runtime micropython")
    args.flash = args.flash or ("folder" if args.runtime == "cpython" else "littlefs")
    args.clock = args.clock or ("virtual" if args.time_scale == 0 else "real")
    if args.clock == "virtual" and args.port == "esp32":
        parser.error("--clock virtual needs --port unix (the esp32 port keeps MicroPython's clock)")
    if args.tls and not (args.broker not in (None, "mosquitto") and args.cafile):
        parser.error("--tls needs --broker HOST:PORT of a TLS listener and --cafile")
    if not 0 <= args.fault_rate <= 1:
        parser.error("--fault-rate is a share of the windows: 0..1")
    try:
        quirks.parse(args.quirk)
    except ValueError as error:
        parser.error(str(error))
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    return args


def _invariants(figures):
    return {
        "no reading lost": figures["readings_lost"] == 0,
        "battery_mv published as the emulator's cell (not its half at the ADC pin)": (
            figures["battery_mv"] is None or BATTERY_MV - BATTERY_NOISE_MV <= figures["battery_mv"][0]
            and figures["battery_mv"][1] <= BATTERY_MV + BATTERY_NOISE_MV),
        "duplicates only with the same seq and reading": figures["seq_conflicts"] == 0,
        "every reading after the first sync has its ts": figures["readings_without_ts_after_sync"] == 0,
        "ts follows seq": figures["ts_out_of_seq_order"] == 0,
        "no ledger entry leaked": figures["ledger_leaks"] == 0,
        "no modem link open after power-off": figures["modem_links_open_after_power_off"] == 0,
        "modem off after every window": figures["modem_on_after_window"] == 0,
        "no data call up after a window": figures["data_calls_up_after_window"] == 0,
        "no window failed without a fault": figures["failed_without_fault"] == 0,
        "every fault armed before its window": figures["faults_armed_late"] == 0,
        "the modem's state recorded at every window's end": figures["windows_unrecorded"] == 0,
        "no retained memory growth (MicroPython)": not soak_report.leaking(figures),
    }


def _summary(figures):
    used = figures["mem_used"]
    print("summary: %d windows (%d ok), readings collected %d, delivered %d, queued %d, lost %d, "
          "duplicates %d; memory used %d..%d bytes, peak %d, largest free block at least %d; "
          "ledger leaks %d; links left open %d; modem on %d ms per window; %.1f s" % (
              figures["cycles"], figures["windows_ok"], figures["readings_collected"],
              figures["readings_delivered"], figures["readings_queued"], figures["readings_lost"],
              figures["duplicates"], min(used or [0]), max(used or [0]), figures["mem_peak"],
              min(figures["mem_largest_free"] or [0]),
              figures["ledger_leaks"], figures["modem_links_open_after_power_off"],
              sum(figures["modem_on_ms"]) // max(1, len(figures["modem_on_ms"])), figures["seconds"]))
    kinds = ", ".join("%s %d" % item for item in sorted(figures["faults"].items()))
    print("time: %d readings without ts after the first sync, %d with a ts earlier than the one before%s" % (
        figures["readings_without_ts_after_sync"], figures["ts_out_of_seq_order"],
        "; the clock covered %.1f days" % figures["clock_days"] if "clock_days" in figures else ""))
    print("faults: %d injected at rate %g, seed %d%s; windows failed %d, without a fault %d; "
          "modem on after a window %d; faults armed late %d; %.3f s per window" % (
              figures["faults_injected"], figures["fault_rate"], figures["seed"],
              " (%s)" % kinds if kinds else "", figures["cycles"] - figures["windows_ok"],
              figures["failed_without_fault"], figures["modem_on_after_window"],
              figures["faults_armed_late"], figures["seconds_per_cycle"]))
    if "flash_erases" in figures:
        print("flash (littlefs, 2 MB): %d bytes written, %d erases; per reading %.0f bytes, %.2f erases; per "
              "window %.0f bytes, %.2f erases; most-erased block %d (%d erases); life at one reading a "
              "minute: %.0f years levelled, %.0f by this run's most-erased block" % (
                  figures["flash_bytes_written"], figures["flash_erases"], figures["flash_bytes_per_reading"],
                  figures["flash_erases_per_reading"], figures["flash_bytes_per_window"],
                  figures["flash_erases_per_window"], figures["flash_most_erased_block"][0],
                  figures["flash_most_erased_block"][1], figures["flash_life_years_levelled"],
                  figures["flash_life_years_worst_block"]))
    for name, held in figures["invariants"].items():
        if not held:
            print("invariant failed: " + name)
    print(soak_report.verdict(figures), flush=True)


def main(argv=None):
    args = _options(argv)
    work = tempfile.mkdtemp(prefix="simboard-")
    flash = os.path.join(work, "flash")  # the board's file system (a ROMFS image goes beside it)
    os.mkdir(flash)
    started = []
    figures = {"runtime": args.runtime, "cycles": 0, "windows_ok": 0, "resets": 0,
               "mem_used": [], "mem_peak": 0, "mem_largest_free": [], "modem_on_ms": [], "ledger_leaks": 0,
               "modem_links_open_after_power_off": 0, "fault_rate": args.fault_rate,
               "seed": args.seed, "time_scale": args.time_scale, "faults_injected": 0,
               "faults": {}, "failed_without_fault": 0, "modem_on_after_window": 0,
               "faults_armed_late": 0, "data_calls_up_after_window": 0, "ppp_sessions": 0, "ppp_escapes": 0,
               "windows_unrecorded": 0,
               "transport": args.transport}
    bench = None
    try:
        os.environ["CELLMQTT_CLOCK"] = os.path.join(work, "clock")  # the board's and the emulator's
        # at a time scale the emulator waits its latencies: the window keeps the wall's rate
        clock_file(os.environ["CELLMQTT_CLOCK"], args.clock == "virtual", WINDOW_RATE if args.time_scale == 0 else 1)
        broker_address = args.broker
        if broker_address in (None, "mosquitto"):
            broker = (Mosquitto() if broker_address else Amqtt()).start()
            started.append(broker)
            broker_address = broker.address
        os.environ["CELLMQTT_INPUTS"] = os.path.join(work, "inputs")  # STATUS as the board reads it
        input_file(os.environ["CELLMQTT_INPUTS"])
        emulator = EmulatorProcess("--power", "off", "--time-scale", str(args.time_scale),
                                   "--seed", str(args.seed), "--inputs", os.environ["CELLMQTT_INPUTS"],
                                   *[word for name in args.quirk for word in ("--quirk", name)]).start()
        started.append(emulator)
        for name in ("boot.py", "main.py"):
            shutil.copy(os.path.join(ROOT, name), flash)
        with open(os.path.join(flash, "config.json"), "w") as f:
            json.dump(board_config(broker_address, args.time_scale, args.tls, args.transport,
                                   args.readings_per_window), f)
        if args.tls:
            shutil.copy(args.cafile, os.path.join(flash, BOARD_CAFILE))
        if args.secrets:
            shutil.copy(args.secrets, os.path.join(flash, "secrets.json"))
        subscriber = Subscriber(broker_address, args.cafile if args.tls else None)
        started.append(subscriber)
        bench = Bench(args, emulator, figures)
        library = board_library(args, work, flash)
        start = time.monotonic()
        image = os.path.join(work, "flash.img") if args.flash == "littlefs" else None
        run_board(args, flash, emulator, bench, library, image)
        seconds = time.monotonic() - start
        state = emulator.state()
        figures["ppp_sessions"], figures["ppp_escapes"] = state["ppp_sessions"], state["ppp_escapes"]
        time.sleep(_SETTLE_S)
        subscriber.stop()
        if image is not None:  # the journal is read on the host, from a copy
            flash = os.path.join(work, "unloaded")
            wear = unload_flash(board_command(args, library), image, flash)
        store = Store(os.path.join(flash, "queue"))
        delivered = subscriber.seqs(DEVICE_ID)
        collected = set(range(1, store.next_seq))
        figures.update(
            readings_collected=store.next_seq - 1, readings_delivered=len(delivered),
            readings_queued=store.depth, readings_dropped=store.dropped,
            duplicates=subscriber.receptions.get(DEVICE_ID, 0) - len(delivered),
            battery_mv=subscriber.battery_mv,
            seq_conflicts=subscriber.conflicts + len(delivered - collected),
            seconds=round(seconds, 1), seconds_per_cycle=round(seconds / max(1, figures["cycles"]), 3))
        queued = set(seq for seq, _ in store.peek(store.depth))
        store.close()
        figures["readings_lost"] = len(collected - delivered - queued)
        figures.update(time_figures(subscriber.stamps(DEVICE_ID)))
        if args.clock == "virtual":  # the time the run covered, on the board's clock
            figures["clock_days"] = round(Clock(0, os.environ["CELLMQTT_CLOCK"]).now_ms() / 86400000, 3)
        if image is not None:
            figures.update(flash_figures(wear, figures["readings_collected"], figures["cycles"],
                                         args.readings_per_window))
    finally:
        os.environ.pop("CELLMQTT_CLOCK", None)
        os.environ.pop("CELLMQTT_INPUTS", None)
        if bench is not None:
            bench.close()
        for service in reversed(started):
            service.stop()
        shutil.rmtree(work, ignore_errors=True)
    figures["growth"] = soak_report.growth(figures["mem_used"], [
        record["outcome"] == "ok" and not record["fault"] for record in bench.records])
    figures["invariants"] = _invariants(figures)
    figures["ok"] = all(figures["invariants"].values())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    if args.plot:
        runtime = "MicroPython" if args.runtime == "micropython" else "CPython"
        soak_report.plot(args.plot, bench.records, "cellmqtt soak: %s, %d upload windows, fault rate "
                         "%g (seed %d)\n%s" % (runtime, figures["cycles"], args.fault_rate, args.seed,
                                              soak_report.headline(figures)),
                         figures["growth"] and figures["growth"]["floor_late"])
    _summary(figures)
    return 0 if figures["ok"] else 1


def _terminated(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


if __name__ == "__main__":
    # SIGTERM (kill, timeout) ends a run as Ctrl-C does: through the cleanup that stops the
    # board, the emulator, the broker and the subscriber
    signal.signal(signal.SIGTERM, _terminated)
    sys.exit(main())
