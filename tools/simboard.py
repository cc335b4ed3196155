"""The simulated board: the unmodified boot.py and main.py on a PC, under CPython or
the MicroPython unix port (heap capped like an ESP32), with the SIM7600 emulator as
the modem (power pins included) and a real broker.

  python -m tools.simboard [--runtime cpython|micropython] [--cycles 20]
                           [--time-scale 0.002] [--broker HOST:PORT] [--json FILE]

Prints the firmware's line for each upload window and a summary. A subscriber of
its own (mosquitto_sub) checks delivery independently of the firmware. The board
process is restarted when it resets (exit code 75), as an MCU would.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from tools.board_files import LIB, ROOT
from tools.services import Amqtt, EmulatorProcess, stop_process

sys.path.insert(0, LIB)
from cellmqtt.port import RESET_EXIT_CODE  # noqa: E402
from cellmqtt.store import Store  # noqa: E402

MICROPYTHON = os.path.join(ROOT, ".venv-micropython", "bin", "micropython")
DEVICE_ID = "sim0001"
_SETTLE_S = 1.0  # for the subscriber to receive what the broker acknowledged last


def board_config(broker_address, time_scale):
    with open(os.path.join(ROOT, "config.example.json")) as f:
        config = json.load(f)
    host, _, port = broker_address.rpartition(":")
    config["broker"].update(host=host, port=int(port))
    config["upload"].update(every_n_readings=5, period_s=None)
    config["device_id"] = DEVICE_ID
    return config


class Subscriber:
    """mosquitto_sub on the data topics; collects (device, seq) of what it receives."""

    def __init__(self, broker_address):
        host, _, port = broker_address.rpartition(":")
        self.process = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-h", host, "-p", port, "-t", "cellmqtt/+/data", "-q", "1",
             "-i", "simboard-check", "-d"], stdout=subprocess.PIPE, text=True)
        self.received = []
        self._subscribed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._subscribed.wait(10):
            self.stop()
            raise RuntimeError("mosquitto_sub did not subscribe")

    def _read(self):
        for line in self.process.stdout:
            if line.startswith("Client ") and "SUBACK" in line:
                self._subscribed.set()
            elif line.startswith("{"):
                message = json.loads(line)
                for reading in message["readings"]:
                    self.received.append((message["device"], reading["seq"]))

    def seqs(self, device):
        return [seq for sender, seq in self.received if sender == device]

    def stop(self):
        stop_process(self.process)
        self._thread.join(5)


def _parse_window(line):
    fields = {}
    for word in line.split()[3:]:
        key, _, value = word.partition("=")
        if value.isdigit():
            fields[key] = int(value)
    fields["ok"] = line.split()[2] == "ok"
    return fields


def run_board(args, flash, emulator, figures):
    env = dict(os.environ, CELLMQTT_MODEM=emulator.uart, CELLMQTT_CONTROL=emulator.control,
               CELLMQTT_TIME_SCALE=str(args.time_scale), CELLMQTT_DEVICE_ID="73696d30303031")
    if args.runtime == "micropython":
        command = [MICROPYTHON, "-X", "heapsize=" + args.heap]
    else:
        command = [sys.executable]
    command += [os.path.join(ROOT, "tools", "board_start.py"), LIB]
    while figures["cycles"] < args.cycles:
        board = subprocess.Popen(command, cwd=flash, env=env, stdout=subprocess.PIPE, text=True)
        stopped = False
        for line in board.stdout:
            print(line.rstrip(), flush=True)
            if not line.startswith("window "):
                continue
            window = _parse_window(line)
            figures["cycles"] += 1
            figures["windows_ok"] += window["ok"]
            figures["mem_used"].append(window["used"])
            figures["mem_peak"] = max(figures["mem_peak"], window["peak"])
            figures["modem_on_ms"].append(window["on_ms"])
            figures["ledger_leaks"] += window["ledger"]
            figures["modem_links_open_after_power_off"] += len(emulator.state()["links"])
            if figures["cycles"] >= args.cycles:
                board.send_signal(signal.SIGTERM)
                stopped = True
        code = board.wait()
        board.stdout.close()
        if stopped:
            return
        if code != RESET_EXIT_CODE:
            raise RuntimeError("the board stopped with exit code %d" % code)
        figures["resets"] += 1
        print("(board reset)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runtime", choices=("cpython", "micropython"), default="micropython")
    parser.add_argument("--cycles", type=int, default=20, help="upload windows to run")
    parser.add_argument("--time-scale", type=float, default=0.002,
                        help="1 = real time; applies to the firmware's sleeps and the modem model")
    parser.add_argument("--broker", help="HOST:PORT of a broker (default: an embedded amqtt)")
    parser.add_argument("--heap", default="256K", help="MicroPython heap (-X heapsize)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    flash = tempfile.mkdtemp(prefix="simboard-flash-")
    started = []
    figures = {"runtime": args.runtime, "cycles": 0, "windows_ok": 0, "resets": 0,
               "mem_used": [], "mem_peak": 0, "modem_on_ms": [], "ledger_leaks": 0,
               "modem_links_open_after_power_off": 0}
    try:
        broker_address = args.broker
        if broker_address is None:
            broker = Amqtt().start()
            started.append(broker)
            broker_address = broker.address
        emulator = EmulatorProcess("--power", "off", "--time-scale", str(args.time_scale)).start()
        started.append(emulator)
        for name in ("boot.py", "main.py"):
            shutil.copy(os.path.join(ROOT, name), flash)
        with open(os.path.join(flash, "config.json"), "w") as f:
            json.dump(board_config(broker_address, args.time_scale), f)
        subscriber = Subscriber(broker_address)
        started.append(subscriber)
        start = time.monotonic()
        run_board(args, flash, emulator, figures)
        time.sleep(_SETTLE_S)
        subscriber.stop()
        store = Store(os.path.join(flash, "queue"))
        received = subscriber.seqs(DEVICE_ID)
        delivered = set(received)
        figures.update(
            readings_collected=store.next_seq - 1, readings_delivered=len(delivered),
            readings_queued=store.depth, readings_dropped=store.dropped,
            duplicates=len(received) - len(delivered), seconds=round(time.monotonic() - start, 1))
        queued = set(seq for seq, _ in store.peek(store.depth))
        store.close()
        figures["readings_lost"] = len(set(range(1, store.next_seq)) - delivered - queued)
    finally:
        for service in reversed(started):
            service.stop()
        shutil.rmtree(flash, ignore_errors=True)
    used = figures["mem_used"]
    print("summary: %d windows (%d ok), readings collected %d, delivered %d, queued %d, lost %d, "
          "duplicates %d; memory used %d..%d bytes, peak %d; ledger leaks %d; links left open %d; "
          "modem on %d ms per window; %.1f s" % (
              figures["cycles"], figures["windows_ok"], figures["readings_collected"],
              figures["readings_delivered"], figures["readings_queued"], figures["readings_lost"],
              figures["duplicates"], min(used or [0]), max(used or [0]), figures["mem_peak"],
              figures["ledger_leaks"], figures["modem_links_open_after_power_off"],
              sum(figures["modem_on_ms"]) // max(1, len(figures["modem_on_ms"])), figures["seconds"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    ok = figures["readings_lost"] == 0 and figures["ledger_leaks"] == 0 and \
        figures["modem_links_open_after_power_off"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
