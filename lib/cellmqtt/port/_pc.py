# What a PC offers under both runtimes: the modem UART as a TCP connection to the
# SIM7600 emulator, and the board's pins wired to the emulator's control port.
# Addresses come from configure() or the environment (CELLMQTT_MODEM,
# CELLMQTT_CONTROL, CELLMQTT_DEVICE_ID). CELLMQTT_TIME_SCALE shortens every sleep
# (sampling periods, key presses, back-off) for a simulated board whose emulator
# runs its latency model at the same scale. CELLMQTT_CLOCK names the simulated
# board's clock file (tools/simboard.py): its RTC, kept across resets, and with a
# virtual clock the time that sleeps between windows skipped (see _Clock).
# CELLMQTT_INPUTS names its input file, where the emulator keeps the levels of the
# lines it drives (STATUS, RI): one byte at each GPIO, read as a pin is, at once; and
# after them BAT_ADC's GPIO and 16 readings of it, read in turn (tools/sim7600_emu/model.py).
import asyncio
import json
import os
import socket
import struct
import sys
import time

from .stream import AsyncioStream

_settings = {
    "modem": os.getenv("CELLMQTT_MODEM"),
    "control": os.getenv("CELLMQTT_CONTROL"),
    "device_id": os.getenv("CELLMQTT_DEVICE_ID") or "5043534d30303031",
}
_CONTROL_TIMEOUT_S = 5
TIME_SCALE = float(os.getenv("CELLMQTT_TIME_SCALE") or 1)
RESET_EXIT_CODE = 75  # the simulated board restarts a process that exits with it
PPP_READS_UART = False  # the PPP stand-in reads nothing: the AT channel hears NO CARRIER
PPP_ADDRESS = "10.64.64.64"  # what the stand-in reports as its address


def configure(modem=None, control=None, device_id=None):
    """Point the port at an emulator: modem and control are "host:port"."""
    if modem is not None:
        _settings["modem"] = modem
    if control is not None and control != _settings["control"]:
        _settings["control"] = control
        _control.close()
    if device_id is not None:
        _settings["device_id"] = device_id


def unique_id():
    return _settings["device_id"]


def scaled_ms(ms):
    if TIME_SCALE == 1:
        return ms
    # a millisecond timer may fire up to 1 ms early: a scaled sleep (a 1 ms key press)
    # must never come out shorter than asked
    return int(ms * TIME_SCALE) + 1


def reset():
    sys.exit(RESET_EXIT_CODE)


def deep_sleep(ms):
    """As on a board: sleep, then wake through a reset (the simulated board restarts us)."""
    if clock.virtual:
        clock.skip(ms)
    else:
        time.sleep(scaled_ms(ms) / 1000)
    reset()


_TICKS_MASK = (1 << 30) - 1  # MicroPython's ticks_ms period on a 32-bit board
# with a virtual clock ticks_ms() starts 5 minutes before a wrap (as Linux starts its
# jiffies), so every run crosses one early instead of after 12.4 days
_TICKS_AT_BOOT = _TICKS_MASK + 1 - 300000
# the clock file: origin (ns of the wall clock), ms skipped, the rate of a window (0: a
# real clock), the RTC, and the wall clock's ns when the open window began (0: none)
_FIELDS = "<qqqqq"


class _Clock:
    """Time in ms since the clock's origin, shared through a file by every process of a
    simulated board (its resets, the emulator: tools/sim7600_emu/model.py reads it).
    A virtual clock skips the sleeps taken while no modem UART is open (between windows
    nothing waits on a peer, so the time is skipped, not waited); inside a window, while
    a UART is open, its sleeps are scaled as on a real clock (one under a millisecond
    of wall clock is a turn of the loop) and it runs at the file's rate times the wall
    clock: the emulator answers at once at time scale 0, so what the firmware times by
    the clock in a window (writes coalesced for 10 ms, re-queries, its bounds) costs a
    fraction of it in real time, while its bounds (1 s for a local answer) keep room
    for a peer that is slow to be scheduled. A real clock at a time scale runs as
    the emulator's model time (wall / scale), the rate of the firmware's scaled sleeps:
    a 60 s sleep is 60 s on the RTC as on the modem's clock (at the wall's rate the RTC
    fell a step behind the network every window and readings a period apart got the
    same ts). The RTC is its offset to UTC (ms; 0: never set), kept there across resets.
    The board's process is the file's only writer while it runs: it reads it at boot
    and writes each change, so a reading of the clock costs no system call."""

    def __init__(self, path):
        self.file = None
        self.virtual = False
        self.rate = 1  # of the clock inside a window, times the wall clock
        self.uarts = 0  # modem UARTs open: a window runs
        self._fields = [time.time_ns(), 0, 0, 0, 0]  # without a file: this process's clock
        if path:
            self.file = open(path, "r+b", buffering=0)  # each change in the file at once
            self._fields = list(struct.unpack(_FIELDS, self.file.read(struct.calcsize(_FIELDS))))
            self.virtual = self._fields[2] >= 1
            self.rate = max(1, self._fields[2])
            self._fold()  # a window cut by a reset has ended
        self.boot_ms = self.now_ms()

    def _store(self):
        if self.file is not None:
            self.file.seek(0)
            self.file.write(struct.pack(_FIELDS, *self._fields))

    def _now(self, wall_ns):
        fields = self._fields
        ms = (wall_ns - fields[0]) // 1000000 + fields[1]
        if fields[4]:
            ms += (fields[2] - 1) * (wall_ns - fields[4]) // 1000000
        return ms

    def now_ms(self):
        if not self.virtual and 0 < TIME_SCALE != 1:
            return int((time.time_ns() - self._fields[0]) // 1000000 / TIME_SCALE) + self._fields[1]
        return self._now(time.time_ns())

    def _fold(self):
        """The open window's extra time into the ms skipped, the window closed (stored)."""
        if self.virtual:
            wall_ns = time.time_ns()
            fields = self._fields
            fields[1] = self._now(wall_ns) - (wall_ns - fields[0]) // 1000000
            fields[4] = 0
            self._store()

    def window(self, opened):
        """A modem UART opened (True) or closed: a window begins or ends."""
        self.uarts += 1 if opened else -1
        if self.virtual and self.uarts == (1 if opened else 0):
            self._fold()
            if opened:
                self._fields[4] = time.time_ns()
                self._store()

    def skip(self, ms):
        self._fields[1] += ms
        self._store()

    def utc(self):
        return (self.now_ms() + self._fields[3]) // 1000 if self._fields[3] else None

    def set_utc(self, seconds):
        self._fields[3] = seconds * 1000 - self.now_ms()
        self._store()


clock = _Clock(os.getenv("CELLMQTT_CLOCK"))


# with a virtual clock (unix.py and cpython.py take these then)
def ticks_ms():
    return (clock.now_ms() - clock.boot_ms + _TICKS_AT_BOOT) & _TICKS_MASK


def ticks_add(ticks, delta):
    return (ticks + delta) & _TICKS_MASK


def ticks_diff(end, start):
    return ((end - start + (1 << 29)) & _TICKS_MASK) - (1 << 29)


def utc():
    """UTC epoch seconds from the board's RTC, None until set_utc() set it."""
    return clock.utc()


def set_utc(seconds):
    clock.set_utc(seconds)


def rtc_s():
    """The RTC's own count: the clock file's, which no reset of the simulated board restarts."""
    return clock.now_ms() // 1000


_rtc_memory = [b""]  # without a clock file: this process's


def rtc_memory(data=None):
    """The RTC's memory: a file beside the clock file, kept as it is across resets (the
    simulated board never loses power)."""
    path = os.getenv("CELLMQTT_CLOCK")
    if data is None:
        if not path:
            return _rtc_memory[0]
        try:
            with open(path + "-memory", "rb") as f:
                return f.read()
        except OSError:
            return b""
    if path:
        with open(path + "-memory", "wb") as f:
            f.write(data)
    else:
        _rtc_memory[0] = bytes(data)


def sleep_ms(ms):
    if clock.uarts:
        time.sleep(scaled_ms(ms) / 1000)
    else:
        clock.skip(ms)


async def asleep_ms(ms):
    if clock.uarts and ms < clock.rate:
        # under a millisecond of wall clock (a write coalesced for 10 ms, a poll for the
        # modem's RDY), less than asyncio can wait (1 ms, 20 on the clock): one turn of the
        # loop; the callers go by the clock and sleep again until their time has come
        await asyncio.sleep(0)
    elif clock.uarts:
        await asyncio.sleep(scaled_ms(ms) / 1000)
    else:
        clock.skip(ms)
        await asyncio.sleep(0)


async def hold_ms(ms):
    """A wait that no peer ends or answers in (PWRKEY held, the silence around +++): on
    the virtual clock all of it passes at once, in a window too, where a sleep waits
    at the window's rate because the emulator may still be on its way. A 500 ms press
    is 500 ms on the clock the modem reads, and no wall clock."""
    clock.skip(ms)
    await asyncio.sleep(0)


def bound_on_clock(wait_for):
    """asyncio.wait_for with its timeout on the virtual clock: inside a window the clock
    runs at its rate times the wall, so a bound (a 5 s registration re-query, a 1 s local
    answer) is waited that many times shorter, as the firmware's ticks count it; in wall
    time it was a 5 s wait (100 s on the clock) for an answer that the bound gives up on."""

    def bounded(awaitable, timeout):
        if timeout is not None and clock.uarts:
            # and a wall ms more: MicroPython's sleep counts whole ms of ticks, so it may
            # end up to one early (20 ms on the clock), and a bound is never shorter
            timeout = timeout / clock.rate + 0.001
        return wait_for(awaitable, timeout)

    return bounded


if clock.virtual:  # for unix.py and cpython.py alike: the firmware looks it up at each call
    asyncio.wait_for = bound_on_clock(asyncio.wait_for)


def split_address(address):
    host, _, port = address.rpartition(":")
    return host, int(port)


async def open_tcp(address):
    host, port = split_address(address)
    reader, writer = await asyncio.open_connection(host, port)
    return AsyncioStream(reader, writer)


class _Uart(AsyncioStream):
    """The modem's UART: while one is open a window runs (see _Clock)."""

    async def close(self):
        if self._writer is not None:
            clock.window(False)
        await AsyncioStream.close(self)


async def open_uart_tcp(uart_config):
    address = uart_config.get("address") or _settings["modem"]
    if not address:
        raise OSError(19, "no modem: set CELLMQTT_MODEM=host:port or port.configure(modem=...)")
    host, port = split_address(address)
    reader, writer = await asyncio.open_connection(host, port)
    clock.window(True)
    return _Uart(reader, writer)


class _Control:
    """A blocking line connection to the emulator's control port, opened on first use."""

    def __init__(self):
        self._sock = None
        self.closes = 0  # the next connection may reach an emulator that restarted

    def ask(self, line):
        """The answer to one request, or None without a control port. A connection the
        emulator dropped (it restarted) is opened again once."""
        if not _settings["control"]:
            return None
        try:
            return self._ask(line)
        except OSError:
            self.close()
            return self._ask(line)

    def _ask(self, line):
        if self._sock is None:
            host, port = split_address(_settings["control"])
            sock = socket.socket()
            sock.settimeout(_CONTROL_TIMEOUT_S)
            sock.connect(socket.getaddrinfo(host, port)[0][-1])
            self._sock = sock
        self._sock.send(line.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = self._sock.recv(64)
            if not chunk:
                raise OSError(104, "emulator control port closed")
            reply += chunk
        return reply.decode().strip()

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self.closes += 1


_control = _Control()


_INPUTS = os.getenv("CELLMQTT_INPUTS")
_inputs = open(_INPUTS, "rb", buffering=0) if _INPUTS else None  # unbuffered: the latest levels
_level_cell = bytearray(1)


class PcPin:
    """A GPIO on a PC: driven through the emulator's wiring when one is configured,
    otherwise a level held in memory (so logic that toggles pins stays testable)."""

    def __init__(self, number, is_output, value=0):
        self.number = number
        self.is_output = is_output
        self._level = value
        self._sent_on = -1  # the control connection (_control.closes then) of the last write
        if is_output:
            self.value(value)

    def value(self, level=None):
        if level is None:
            if not self.is_output and _inputs is not None:
                _inputs.seek(self.number)
                _inputs.readinto(_level_cell)
                self._level = _level_cell[0]
            elif not self.is_output:
                answer = _control.ask("GET %d" % self.number)
                if answer is not None:
                    self._level = int(answer)
            return self._level
        level = 1 if level else 0
        if level == self._level and self._sent_on == _control.closes:
            return None  # the wire holds it: a board's write of the same level changes nothing
        self._level = level
        if _control.ask("SET %d %d" % (self.number, level)) is not None:  # an emulator has it
            self._sent_on = _control.closes
        return None


def output_pin(number, value=0):
    return PcPin(number, True, value)


def input_pin(number):
    return PcPin(number, False)


_ADC_AT = 64  # after the levels: BAT_ADC's GPIO (u8), then _ADC_RING readings (u16 mV)
_ADC_RING = 16
_adc_cell = bytearray(1 + 2 * _ADC_RING)
_adc_reads = 0


def adc_read_mv(number):
    global _adc_reads
    if _inputs is not None:
        _inputs.seek(_ADC_AT)
        _inputs.readinto(_adc_cell)
        if _adc_cell[0] != number:
            return 0
        _adc_reads += 1
        return struct.unpack_from("<H", _adc_cell, 1 + 2 * (_adc_reads % _ADC_RING))[0]
    answer = _control.ask("ADC %d" % number)
    return 0 if answer is None else int(answer)


class PcPpp:
    """network.PPP's calls on a PC, whose kernel has no PPP here. It counts as
    connected once connect() was called while the call is in data mode and the
    emulator's STATE says so too (where a control port is configured). Sockets then
    go straight to their destination (open_tcp, open_tls); PppLink fails them once
    the carrier drops."""

    def __init__(self, call):
        self._call = call
        self._active = True
        self._connecting = False

    def active(self, *state):
        if state:
            self._active = bool(state[0])
            self._connecting = self._connecting and self._active
        return self._active

    def connect(self):
        if not self._active:
            raise OSError(1, "PPP not active")
        self._connecting = True

    def disconnect(self):
        self._connecting = False

    def isconnected(self):
        if not self._connecting or self._call.state != "data":
            return False
        answer = _control.ask("STATE")
        return answer is None or json.loads(answer).get("data_mode") is True

    def ipconfig(self, name):
        if name != "addr4":
            raise ValueError("unknown config param")
        return (PPP_ADDRESS if self.isconnected() else "0.0.0.0", "255.255.255.255")


def new_ppp(call):
    """The PPP stand-in for a data call in data mode."""
    return PcPpp(call)
