"""The model's numbers (latencies, limits, the board's wiring) and its clock."""

import asyncio
import os
import struct
import sys
import time

from tools.board_files import LIB

if LIB not in sys.path:
    sys.path.insert(0, LIB)
from cellmqtt.config import PINS as BOARD_PINS  # noqa: E402

OFF, BOOTING, ON, STOPPING = "off", "booting", "on", "stopping"
# the kinds of line the modem frames (Modem.framed): the quirks shape each differently
INFO, FINAL, URC, HEADER = "info", "final", "urc", "header"

# Latencies in model milliseconds; Clock.seconds() turns them into wall time.
LATENCY_MS = {
    "boot": 12000,     # HD 3.2: the UART answers after 11-12 s
    "slow_boot": 20000,  # quirk slow_boot: RDY and the UART
    "slow_status": 16000,  # quirk slow_boot: STATUS high (HD 3.2: 12-16 s)
    "register": 2000,  # from boot (or the radio back on) to stat 1
    "netopen": 1000,   # AT+NETOPEN: OK ... +NETOPEN: 0
    "netclose": 300,   # AT+NETCLOSE: OK ... +NETCLOSE: 0
    "cipopen": 300,    # AT+CIPOPEN: OK ... the real connect ... +CIPOPEN: <l>,0
    "cipclose": 100,   # AT+CIPCLOSE: OK ... +CIPCLOSE: <l>,0
    "send": 50,        # CIPSEND payload: OK ... +CIPSEND: <l>,<req>,<cnf>
    "shutdown": 5000,  # AT+CPOF or a long PWRKEY press until STATUS drops
    "ri_pulse": 120,   # HD: RI pulses low for 120 ms
    "late_error": 300,  # quirks late_ip_error, two_errors: a trailing ERROR that comes late
}
POWER_ON_PRESS_MS = 100    # HD 3.2: PWRKEY >= 100 ms starts the module
POWER_OFF_PRESS_MS = 2500  # HD 3.2: PWRKEY >= 2.5 s shuts it down
LINKS = 10                 # ATM ch. 11: links 0-9
RX_LIMIT = 65536           # receive buffer per link; when full, TCP flow control holds the remote
RX_CHUNK = 1500            # one read from the remote, one +IPD, at most one CIPRXGET=2
MAX_SEND = 1500            # ATM: AT+CIPSEND=<l>,<len> takes 1-1500
MAX_CONNECT_MS = 120000    # ATM: the longest AT+CIPTIMEOUT open timeout
BATTERY_MV = 3950          # a healthy Li-ion cell
BATTERY_NOISE_MV = 8       # of the cell's voltage, read to read
BATTERY_DIVIDER = 2        # LilyGO T-SIM7600X: the cell reaches BAT_ADC through 100k/100k, the pin sees half
RSSI = 21                  # +CSQ: 21,99 is about -71 dBm
LOCAL_IP = "10.71.155.118"
ZONE_QUARTERS = 8          # the network's time zone (+CCLK, +CTZV): UTC+2, in quarter hours
OPERATOR = "EMULATOR"

# The board's wiring, as the firmware has it (lib/cellmqtt/config.py PINS): the GPIO of each signal
DEFAULT_PINS = {name: BOARD_PINS[key] for name, key in (
    ("PWRKEY", "pwrkey"), ("FLIGHT", "flight"), ("STATUS", "status"), ("DTR", "dtr"), ("RI", "ri"),
    ("BAT_ADC", "battery_adc"))}
OUTPUTS = ("PWRKEY", "FLIGHT", "DTR", "POWER_EN", "RESET")  # the board drives these
INPUTS = ("STATUS", "RI", "BAT_ADC")                         # the board reads these
PIN_NAMES = OUTPUTS + INPUTS


def parse_pins(spec):
    """`PWRKEY=4,FLIGHT=25,...` or a dict -> the full map: the given names over the
    defaults. Unknown names and one GPIO for two signals are ValueErrors."""
    given = spec
    if isinstance(spec, str):
        given = {}
        for item in spec.split(","):
            name, sep, gpio = item.strip().partition("=")
            if not sep:
                raise ValueError("pins: expected NAME=GPIO, got %r" % item)
            try:
                given[name.strip().upper()] = int(gpio)
            except ValueError:
                raise ValueError("pins: %s=%r is not a GPIO number" % (name, gpio)) from None
    pins = dict(DEFAULT_PINS)
    for name, gpio in (given or {}).items():
        if name not in PIN_NAMES:
            raise ValueError("pins: unknown signal %r (known: %s)" % (name, ", ".join(PIN_NAMES)))
        pins[name] = int(gpio)
    if len(set(pins.values())) != len(pins):
        raise ValueError("pins: two signals on one GPIO in %r" % pins)
    return pins


# the simulated board's clock file (lib/cellmqtt/port/_pc.py, _Clock): origin (wall
# clock ns), ms skipped by the board's sleeps, the rate of a window (0: a real clock, 1 or
# more: a virtual clock whose windows run that many times the wall clock), the board's
# RTC, and the wall clock's ns when the open window began (0: none)
CLOCK_FIELDS = "<qqqqq"


def clock_file(path, virtual, window_rate=1):
    """A new clock file for a simulated board and its emulator (CELLMQTT_CLOCK)."""
    with open(path, "wb") as f:
        f.write(struct.pack(CLOCK_FIELDS, time.time_ns(), 0, window_rate if virtual else 0, 0, 0))


# the simulated board's input file (lib/cellmqtt/port/_pc.py, CELLMQTT_INPUTS): the level
# of each line the modem drives, one byte at its GPIO's offset, so the board reads STATUS
# as a pin is read, at once, instead of asking the control port
INPUT_GPIOS = 64
# after the levels, the battery: BAT_ADC's GPIO (u8) and ADC_RING readings of it in mV
# (u16 each), drawn afresh as the modem goes off (and at each change of its lines while
# off) and read by the board in turn, each as an ADC request would have answered, without one
ADC_RING = 16
ADC_FORMAT = "<B%dH" % ADC_RING


def input_file(path):
    """A new input file for a simulated board and its emulator (every line low)."""
    with open(path, "wb") as f:
        f.write(bytes(INPUT_GPIOS + struct.calcsize(ADC_FORMAT)))


class InputFile:
    """The emulator's end of an input file: writes each level that changed."""

    def __init__(self, path):
        self._fd = os.open(path, os.O_WRONLY)
        self._levels = {}

    def publish(self, levels):
        """levels: {gpio: 0|1}."""
        for gpio, level in levels.items():
            if self._levels.get(gpio) != level:
                os.pwrite(self._fd, bytes((level,)), gpio)
                self._levels[gpio] = level

    def publish_adc(self, gpio, readings):
        """readings: ADC_RING mV at BAT_ADC's GPIO."""
        os.pwrite(self._fd, struct.pack(ADC_FORMAT, gpio, *readings), INPUT_GPIOS)

    def close(self):
        os.close(self._fd)


class Clock:
    """Model time: wall time divided by the time scale. With scale 0 every latency is
    zero and model time runs with the wall clock (so powered_ms stays meaningful).
    With a virtual clock file (path, default $CELLMQTT_CLOCK) model time is the board's:
    the wall clock plus what the board's sleeps skipped, so the modem's clock moves
    15 minutes when the board sleeps 15 minutes, however little wall time that took,
    and inside a window the rate the board's clock runs at."""

    def __init__(self, scale, path=None):
        if not scale >= 0:
            raise ValueError("time scale must be >= 0, got %r" % scale)
        self.scale = float(scale)
        self._start = time.monotonic()
        self._file = None
        path = path or os.getenv("CELLMQTT_CLOCK")
        if path:
            file = open(path, "rb", buffering=0)
            if self._fields(file)[2] >= 1:
                self._file = file
            else:
                file.close()

    @staticmethod
    def _fields(file):
        return struct.unpack(CLOCK_FIELDS, os.pread(file.fileno(), struct.calcsize(CLOCK_FIELDS), 0))

    def now_ms(self):
        if self._file is not None:
            origin, skipped, rate, _, window_began = self._fields(self._file)
            wall_ns = time.time_ns()
            extra = (rate - 1) * (wall_ns - window_began) / 1e6 if window_began else 0
            return (wall_ns - origin) / 1e6 + skipped + extra
        wall_ms = (time.monotonic() - self._start) * 1000.0
        return wall_ms / self.scale if self.scale > 0 else wall_ms

    utc_start_ms = None  # UTC at now_ms() zero (--clock); None: the host's UTC, taken on first use

    def utc_ms(self):
        """UTC in ms: the start plus model time."""
        if self.utc_start_ms is None:
            self.utc_start_ms = time.time() * 1000.0 - self.now_ms()
        return self.utc_start_ms + self.now_ms()

    def seconds(self, model_ms):
        """Wall seconds to wait for model_ms."""
        return model_ms * self.scale / 1000.0

    def passing_seconds(self, model_ms):
        """Wall seconds in which model_ms pass on this clock: for a time that must pass
        (a guard time), not a latency; at time scale 0 a window's rate still applies."""
        if self.scale > 0:
            return self.seconds(model_ms)
        if self._file is not None:
            _, _, rate, _, window_began = self._fields(self._file)
            if window_began:
                return model_ms / rate / 1000.0
        return model_ms / 1000.0


def call_later(timers, delay_s, fn, *args):
    """Run fn(*args) on the running loop after delay_s wall seconds (0: at its next turn);
    its handle stays in `timers` until it fires, for a power loss or a reset to cancel."""
    holder = []

    def fire():
        timers.discard(holder[0])
        fn(*args)

    loop = asyncio.get_running_loop()
    handle = loop.call_later(delay_s, fire) if delay_s > 0 else loop.call_soon(fire)
    holder.append(handle)
    timers.add(handle)
    return handle
