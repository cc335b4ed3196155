"""`python -m tools.fleet sim`: N boards against a broker, in this one process. Each
board is the real DutyCycle (lib/cellmqtt/app.py) with its own store on disk, its own
ledger, the real power manager and the real SIM7600 driver, on a modem of its own: the
SIM7600 emulator's model (tools/sim7600_emu) wired in-process, UART and pins, whose
links are real TCP connections to the broker. Wake-ups are staggered over one upload
interval; sleeps run at CELLMQTT_TIME_SCALE (set by __main__ before cellmqtt loads).

Heap figures: a thousand boards in one CPython process share one heap, so each board's
watchdog (the real MemWatch) reads a model of an ESP32 heap instead: a floor, what a
window leaves behind (under memwatch.leak_bytes, as a clean board's noise), a window's
peak, and with --leaky-board K, B bytes kept for good in every window.
"""

import asyncio
import contextlib
import copy
import json
import os
import random
import shutil
import tempfile
import time

from cellmqtt import config as checker
from cellmqtt import port
from cellmqtt.app import DutyCycle
from cellmqtt.ledger import Ledger
from cellmqtt.power import PowerManager
from cellmqtt.synthetic import SyntheticSensor
from tools.sim7600_emu.emulator import Emulator
from tools.soak_faults import Schedule

from . import heap

HEAP_TOTAL = 110 * 1024  # an ESP32 without PSRAM
HEAP_FLOOR = 60 * 1024  # the firmware after boot, about (bench: 32-bit AT transport)
WINDOW_PEAK = 20 * 1024  # what a window holds at its busiest, about
FRAGMENTS = 8 * 1024  # the largest free block falls short of the free memory by up to this
_STEP = 16  # heap figures move in blocks


class SimError(Exception):
    """The simulation could not run as asked."""


class ModemUart:
    """A board's UART wired to its emulated modem: writes go to the modem's command
    line, what the modem sends waits here for the driver's reads."""

    def __init__(self, modem):
        self._modem = modem
        self._rx = bytearray()
        self._ready = asyncio.Event()
        self._open = True
        modem.attach(self._sink)

    def _sink(self, data):
        self._rx += data
        self._ready.set()

    async def read(self, max_bytes):
        while not self._rx:
            if not self._open:
                return b""
            self._ready.clear()
            await self._ready.wait()
        data = bytes(self._rx[:max_bytes])
        del self._rx[:max_bytes]
        return data

    async def write(self, data):
        if not self._open:
            raise OSError(9, "UART closed")
        self._modem.feed(bytes(data))

    async def close(self):
        if self._open:
            self._open = False
            self._modem.detach(self._sink)
            self._ready.set()


class _Pin:
    def __init__(self, modem, number, output, level=0):
        self._modem = modem
        self._number = number
        if output:
            modem.set_pin(number, level)

    def value(self, level=None):
        if level is None:
            return self._modem.get_pin(self._number)
        self._modem.set_pin(self._number, 1 if level else 0)
        return None


class Wiring:
    """The board's pins as config.power_lines makes them (its `board`): wired to the modem."""

    def __init__(self, modem):
        self._modem = modem

    def output_pin(self, number, level=0):
        return _Pin(self._modem, number, True, level)

    def input_pin(self, number):
        return _Pin(self._modem, number, False)


class ModelHeap(heap.Figures):
    """A board's heap: each collection (one per window, by the watchdog) ends a window
    that left `wander` bytes behind, under the watchdog's leak_bytes, plus `leak`."""

    def __init__(self, rng, leak_bytes, noise_bytes):
        heap.Figures.__init__(self)
        self._rng = rng
        self._leak = leak_bytes
        self._noise = max(_STEP, noise_bytes)
        self._floor = HEAP_FLOOR + rng.randrange(0, 4096, _STEP)
        self.kept = 0
        self._next_window()

    def _next_window(self):
        used = self._floor + self.kept + self._rng.randrange(0, self._noise, _STEP)
        free = HEAP_TOTAL - used
        self.set(used, used + WINDOW_PEAK + self._rng.randrange(0, 4096, _STEP), free,
                 free - self._rng.randrange(0, FRAGMENTS, _STEP))

    def collect(self):
        self.kept += self._leak
        self._next_window()
        heap.Figures.collect(self)


class Board:
    def __init__(self, raw, folder, rng, leak_bytes, fault_rate, seed):
        self.device = raw["device_id"]
        self.emulator = Emulator(power_on=False, time_scale=0.0, seed=seed)
        queue = os.path.join(folder, self.device)
        os.mkdir(queue)
        raw = copy.deepcopy(raw)
        raw["queue"]["path"] = queue + "/queue"
        config = checker.validate(raw)
        config["uart"]["address"] = self.device  # the in-process modem of this board (_uarts)
        settings = config["memwatch"]
        self.heap = ModelHeap(rng, leak_bytes, settings["leak_bytes"] * 3 // 4)
        power = PowerManager(checker.power_lines(config["pins"], Wiring(self.emulator.modem)),
                             ready_timeout_ms=config["modem"]["boot_timeout_s"] * 1000)
        self.cycle = DutyCycle(config, sensor=SyntheticSensor(), power=power,
                               watch=heap.Watch(settings, self.heap), book=Ledger(), log=self._line)
        self.cycle.boot_file = queue + "/boot"  # each board its own boot counter, beside its queue
        self.schedule = Schedule(fault_rate, seed) if fault_rate else None
        self.lines = []
        self.faults = 0

    def _line(self, text):
        self.lines.append(text)
        self._arm()

    def _arm(self):
        """Between windows (the modem is off): the last fault cleared, the next armed."""
        control = self.emulator.control
        control("CLEAR")
        control("QUIRK OFF all")
        fault = self.schedule.next() if self.schedule else None
        if fault is not None:
            self.faults += 1
            answer = control(fault.request)
            if answer != "OK":
                raise SimError("the emulator refused %r: %s" % (fault.request, answer))

    async def run(self, windows, delay_s):
        await asyncio.sleep(delay_s)
        self._arm()
        await self.cycle.run(windows)

    def summary(self):
        cycle = self.cycle
        failed = sum(1 for line in self.lines if line.split()[2] != "ok")
        return {"device": self.device, "windows": cycle.windows, "failed_windows": failed,
                "faults": self.faults, "collected": cycle.collected, "queued": cycle.store.depth,
                "delivered": cycle.collected - cycle.store.depth - cycle.store.dropped,
                "dropped": cycle.store.dropped, "leaked_bytes": self.heap.kept,
                "ledger": len(cycle.ledger), "status": cycle.watch.verdict.status}


@contextlib.contextmanager
def _uarts(boards):
    """The port layer opens each board's UART on its own modem (by uart.address)."""
    original = port.open_uart

    async def open_uart(uart_config):
        board = boards.get(uart_config.get("address"))
        if board is None:
            return await original(uart_config)
        return ModemUart(board.emulator.modem)

    port.open_uart = open_uart
    try:
        yield
    finally:
        port.open_uart = original


def board_config(raw, broker, memwatch_settings):
    """The boards' config.json: `raw` with the broker, the AT transport and the
    watchdog settings of the run; device_id and the queue are set per board."""
    raw = copy.deepcopy(raw)
    host, _, number = broker.rpartition(":")
    raw["broker"].update(host=host, port=int(number), tls=False, cafile=None, certfile=None)
    raw["transport"] = "at"
    raw["sleep"] = {"mode": "light"}  # a deep sleep ends the process, as a reset
    raw["memwatch"] = dict(raw.get("memwatch", {}), **memwatch_settings)
    checker.validate(dict(raw, device_id="check"))  # a bad file fails here, once
    return raw


async def _simulate(boards, windows, stagger_s, log):
    started = time.monotonic()
    tasks = [asyncio.create_task(board.run(windows, stagger_s * i / len(boards)))
             for i, board in enumerate(boards)]
    pending = set(tasks)
    step = mark = max(1, len(boards) // 10)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=10)
        finished = len(tasks) - len(pending)
        if finished >= mark or not pending:
            log("sim: %d of %d boards done, %.0f s" % (finished, len(tasks), time.monotonic() - started))
            mark = (finished // step + 1) * step
    for task in tasks:
        task.result()  # a board that crashed is a bug of the simulation: say so


def run(args, raw, log=print):
    """Run the boards on board_config() `raw`; returns the summary (also written to --json)."""
    if abs(port.scaled_ms(100000) - 100000 * args.time_scale) > 2:
        raise SimError("CELLMQTT_TIME_SCALE must be %s before cellmqtt loads (python -m tools.fleet sets it)"
                       % args.time_scale)
    checked = checker.validate(dict(raw, device_id="check"))
    every, interval_s = checked["upload"]["every_n_readings"], checked["upload"]["period_s"]
    # wake-ups spread over one upload interval
    stagger_s = (every * checked["sampling"]["period_s"] if every else interval_s) * args.time_scale
    folder = tempfile.mkdtemp(prefix="fleet-sim-")
    rng = random.Random(args.seed)
    try:
        boards = {}
        for number in range(1, args.boards + 1):
            raw["device_id"] = "%s%04d" % (args.prefix, number)
            leak = args.leak_bytes if number == args.leaky_board else 0
            board = Board(raw, folder, random.Random(rng.random()), leak, args.fault_rate, args.seed * 100003 + number)
            boards[board.device] = board
        started = time.monotonic()
        with _uarts(boards):
            asyncio.run(_simulate(list(boards.values()), args.windows, stagger_s, log))
        wall_s = time.monotonic() - started
        per_board = [board.summary() for board in boards.values()]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    summary = {"boards": args.boards, "windows": args.windows, "wall_s": round(wall_s, 1),
               "leaky": "%s%04d" % (args.prefix, args.leaky_board) if args.leaky_board else None,
               "per_board": per_board}
    for key in ("failed_windows", "faults", "collected", "delivered", "queued", "dropped"):
        summary[key] = sum(board[key] for board in per_board)
    log("sim: %(boards)d boards, %(windows)d windows each, %(wall_s).1f s: %(collected)d readings taken, "
        "%(delivered)d acknowledged by the broker, %(queued)d still queued, %(failed_windows)d windows "
        "failed (%(faults)d faults armed)" % summary)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=1)
    return summary
