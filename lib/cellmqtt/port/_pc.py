# What a PC offers under both runtimes: the modem UART as a TCP connection to the
# SIM7600 emulator, and the board's pins wired to the emulator's control port.
# Addresses come from configure() or the environment (CELLMQTT_MODEM,
# CELLMQTT_CONTROL, CELLMQTT_DEVICE_ID). CELLMQTT_TIME_SCALE shortens every sleep
# (sampling periods, key presses, back-off) for a simulated board whose emulator
# runs its latency model at the same scale.
import asyncio
import json
import os
import socket
import sys

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
    import time

    time.sleep(scaled_ms(ms) / 1000)
    reset()


def split_address(address):
    host, _, port = address.rpartition(":")
    return host, int(port)


async def open_tcp(address):
    host, port = split_address(address)
    reader, writer = await asyncio.open_connection(host, port)
    return AsyncioStream(reader, writer)


async def open_uart_tcp(uart_config):
    address = uart_config.get("address") or _settings["modem"]
    if not address:
        raise OSError(19, "no modem: set CELLMQTT_MODEM=host:port or port.configure(modem=...)")
    return await open_tcp(address)


class _Control:
    """A blocking line connection to the emulator's control port, opened on first use."""

    def __init__(self):
        self._sock = None

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


_control = _Control()


class PcPin:
    """A GPIO on a PC: driven through the emulator's wiring when one is configured,
    otherwise a level held in memory (so logic that toggles pins stays testable)."""

    def __init__(self, number, is_output, value=0):
        self.number = number
        self.is_output = is_output
        self._level = value
        if is_output:
            self.value(value)

    def value(self, level=None):
        if level is None:
            if not self.is_output:
                answer = _control.ask("GET %d" % self.number)
                if answer is not None:
                    self._level = int(answer)
            return self._level
        self._level = 1 if level else 0
        _control.ask("SET %d %d" % (self.number, self._level))
        return None


def output_pin(number, value=0):
    return PcPin(number, True, value)


def input_pin(number):
    return PcPin(number, False)


def adc_read_mv(number):
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
