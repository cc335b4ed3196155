# machine as an ESP32 has it, as far as cellmqtt's port/esp32.py uses it, wired to the
# SIM7600 emulator (CELLMQTT_MODEM, CELLMQTT_CONTROL, CELLMQTT_DEVICE_ID): the modem UART
# is a pollable stream over the emulator's TCP port, pins and the ADC go through its
# control port, reset() and deepsleep() end the process with the exit code the simulated
# board restarts, as a board resets. Checks what a board's MicroPython checks (pin
# numbers, input-only pins) and offers no more than it does (a UART has no close()).
import asyncio
import binascii
import io
import os
import select
import socket
import sys
import time

RESET_EXIT_CODE = 75  # cellmqtt.port._pc.RESET_EXIT_CODE: what the simulated board restarts
TIME_SCALE = float(os.getenv("CELLMQTT_TIME_SCALE") or 1)
_GPIOS = tuple(range(0, 20)) + (21, 22, 23, 25, 26, 27) + tuple(range(32, 40))
_INPUT_ONLY = tuple(range(34, 40))
_ADC_GPIOS = (0, 2, 4, 12, 13, 14, 15, 25, 26, 27) + tuple(range(32, 40))
_STREAM_GET_FILENO = 10  # the unix port's poll then waits on the socket itself
_EINVAL = 22
_RX_IDLE_POLL_MS = 5  # how often the RX-idle "interrupt" looks for received bytes
_CONTROL_TIMEOUT_S = 5


def scaled_ms(ms):
    if TIME_SCALE == 1:
        return ms
    return int(ms * TIME_SCALE) + 1  # never shorter than asked, as port/_pc.py


def _connect(address):
    host, _, port = address.rpartition(":")
    sock = socket.socket()
    sock.connect(socket.getaddrinfo(host, int(port))[0][-1])
    return sock


class _Control:
    """Blocking request lines to the emulator's control port, connected on first use."""

    def __init__(self):
        self._sock = None

    def ask(self, line):
        if self._sock is None:
            address = os.getenv("CELLMQTT_CONTROL")
            if not address:
                raise OSError(19, "no emulator control port: set CELLMQTT_CONTROL")
            self._sock = _connect(address)
            self._sock.settimeout(_CONTROL_TIMEOUT_S)
        self._sock.send(line.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = self._sock.recv(64)
            if not chunk:
                raise OSError(104, "emulator control port closed")
            reply += chunk
        return reply.decode().strip()


control = _Control()


def unique_id():
    return binascii.unhexlify(os.getenv("CELLMQTT_DEVICE_ID") or "240ac4000102")


def reset():
    sys.exit(RESET_EXIT_CODE)


def deepsleep(ms=0):
    time.sleep_ms(scaled_ms(ms))
    reset()


class RTC:
    """Keeps what the firmware sets (port.set_utc, from the network's time); the clock that
    port.utc reads, time.time(), is the host's, already UTC."""

    _set = None
    _memory = b""  # RTC memory: a restart of this process is a power loss

    def datetime(self, value=None):
        if value is None:
            return RTC._set
        RTC._set = value

    def memory(self, data=None):
        if data is None:
            return RTC._memory
        RTC._memory = bytes(data)


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_DOWN = 1
    PULL_UP = 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        if id not in _GPIOS:
            raise ValueError("invalid pin")
        if mode in (Pin.OUT, Pin.OPEN_DRAIN) and id in _INPUT_ONLY:
            raise ValueError("pin can only be input")
        self._id = id
        self._mode = mode
        self._level = 0
        if value is not None:
            self.value(value)

    def value(self, level=None):
        if level is None:
            if self._mode == Pin.IN:
                self._level = int(control.ask("GET %d" % self._id))
            return self._level
        self._level = 1 if level else 0
        control.ask("SET %d %d" % (self._id, self._level))
        return None


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3

    def __init__(self, pin, *, atten=ATTN_0DB):
        if not isinstance(pin, Pin) or pin._id not in _ADC_GPIOS:
            raise ValueError("invalid pin")
        self._id = pin._id
        self._atten = atten

    def atten(self, atten):
        self._atten = atten

    def read_uv(self):
        return int(control.ask("ADC %d" % self._id)) * 1000


class UART(io.IOBase):
    """A board's UART to the modem: read() gives what has arrived (None when nothing
    has), write() what fits, irq() with IRQ_RXIDLE calls its handler while bytes wait,
    as network.PPP uses it."""

    IRQ_RXIDLE = 0x1000
    IRQ_BREAK = 0x2000

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, *, tx=-1, rx=-1, rts=-1, cts=-1,
                 txbuf=256, rxbuf=256, timeout=0, timeout_char=0, invert=0, flow=0):
        if id not in (0, 1, 2):
            raise ValueError("UART(%d) does not exist" % id)
        for number in (tx, rx):
            if number != -1 and number not in _GPIOS:
                raise ValueError("invalid pin")
        address = os.getenv("CELLMQTT_MODEM")
        if not address:
            raise OSError(19, "no emulator UART: set CELLMQTT_MODEM")
        self._sock = _connect(address)
        self._sock.setblocking(False)
        self._poll = select.poll()
        self._poll.register(self._sock, select.POLLIN)
        self._irq_task = None

    def read(self, nbytes=-1):
        return self._sock.read(nbytes) if nbytes >= 0 else self._sock.read()

    def readinto(self, buf, nbytes=-1):
        return self._sock.readinto(buf, nbytes) if nbytes >= 0 else self._sock.readinto(buf)

    def write(self, buf):
        return self._sock.write(buf)

    def _waiting(self):
        return bool(self._poll.poll(0))

    def irq(self, handler=None, trigger=0, hard=False):
        if self._irq_task is not None:
            self._irq_task.cancel()
            self._irq_task = None
        if handler is not None and trigger & UART.IRQ_RXIDLE:
            self._irq_task = asyncio.create_task(self._rx_idle(handler))

    async def _rx_idle(self, handler):
        while True:
            if self._waiting():
                handler(self)
            await asyncio.sleep_ms(_RX_IDLE_POLL_MS)

    def deinit(self):
        self.irq(None)
        self._poll.unregister(self._sock)
        self._sock.close()

    def ioctl(self, request, arg):
        if request == _STREAM_GET_FILENO:
            return self._sock.fileno()
        return -_EINVAL
