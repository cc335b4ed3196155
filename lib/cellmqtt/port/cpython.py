# CPython on a PC: MicroPython's wrapping tick arithmetic, heap figures from
# tracemalloc against a configured heap size, and a real modem through pyserial.
import asyncio
import os
import ssl
import tempfile
import time
import tracemalloc

from ._pc import (  # noqa: F401
    PPP_READS_UART,
    clock,
    RESET_EXIT_CODE,
    adc_read_mv,
    configure,
    deep_sleep,
    input_pin,
    new_ppp,
    open_tcp,
    open_uart_tcp,
    output_pin,
    reset,
    rtc_memory,
    rtc_s,
    scaled_ms,
    set_utc,
    split_address,
    unique_id,
    utc,
)
from ..errors import TLS_EXPIRED, TLS_FAILED, TLS_HOST, TLS_UNTRUSTED, Timeout, TlsError
from ._tls import HANDSHAKE_TIMEOUT_MS, TlsStream, cause, der_blocks, detail
from .stream import AsyncioStream

NAME = "cpython"
_TICKS_PERIOD = 1 << 30  # as MicroPython's ticks_ms: wraps, so callers must use ticks_diff
_TICKS_HALF = _TICKS_PERIOD // 2
# tracemalloc counts every Python allocation of the process, the interpreter's own
# included (a test runner holds tens of MB), so the notional heap is far larger than a
# board's: the figures serve logic that judges growth, not absolute sizes.
_HEAP_SIZE = int(os.getenv("CELLMQTT_HEAP") or 256 * 1024 * 1024)


def ticks_ms():
    return int(time.monotonic() * 1000) & (_TICKS_PERIOD - 1)


def ticks_add(ticks, delta):
    return (ticks + delta) & (_TICKS_PERIOD - 1)


def ticks_diff(end, start):
    return ((end - start + _TICKS_HALF) & (_TICKS_PERIOD - 1)) - _TICKS_HALF


def sleep_ms(ms):
    time.sleep(scaled_ms(ms) / 1000)


async def asleep_ms(ms):
    await asyncio.sleep(scaled_ms(ms) / 1000)


hold_ms = asleep_ms

if clock.virtual:
    from ._pc import asleep_ms, hold_ms, sleep_ms, ticks_add, ticks_diff, ticks_ms  # noqa: F401,F811


def _traced():
    if not tracemalloc.is_tracing():
        tracemalloc.start()
    return tracemalloc.get_traced_memory()[0]


def mem_alloc():
    return _traced()


def mem_free():
    return max(0, _HEAP_SIZE - _traced())


def mem_total():
    return _HEAP_SIZE


def largest_free():
    return mem_free()  # the notional heap does not fragment


def collect():
    import gc

    gc.collect()


class _SerialStream:
    """A Stream over a pyserial port, read through the event loop's reader callback."""

    def __init__(self, serial_port):
        self._port = serial_port
        self._ready = asyncio.Event()
        asyncio.get_running_loop().add_reader(serial_port.fileno(), self._ready.set)

    async def read(self, max_bytes):
        while self._port is not None:
            data = self._port.read(max_bytes)
            if data:
                return data
            self._ready.clear()
            await self._ready.wait()
        return b""

    async def write(self, data):
        if self._port is None:
            raise OSError(9, "stream closed")
        self._port.write(data)
        self._port.flush()

    async def close(self):
        port, self._port = self._port, None
        if port is not None:
            asyncio.get_running_loop().remove_reader(port.fileno())
            port.close()
            self._ready.set()


async def open_uart(uart_config):
    device = uart_config.get("device")
    if device is None:
        return await open_uart_tcp(uart_config)
    import serial

    port = serial.Serial(device, uart_config.get("baud", 115200), timeout=0)
    return _SerialStream(port)


# OpenSSL verify codes (X509_V_ERR_*) by cause; others are named from the message
_VERIFY_CAUSES = {2: TLS_UNTRUSTED, 7: TLS_UNTRUSTED, 18: TLS_UNTRUSTED, 19: TLS_UNTRUSTED,
                  20: TLS_UNTRUSTED, 21: TLS_UNTRUSTED, 9: TLS_EXPIRED, 10: TLS_EXPIRED,
                  62: TLS_HOST, 64: TLS_HOST}


def _tls_context(ca, cert, key):
    context = ssl.create_default_context()  # CERT_REQUIRED and host name checking
    for block in der_blocks(ca):
        context.load_verify_locations(cadata=block)
    if cert is not None:
        # CPython loads a client certificate only from files: a private folder, removed at once
        with tempfile.TemporaryDirectory() as folder:
            paths = (os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem"))
            for path, data in zip(paths, (cert, key)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                    f.write(data)
            context.load_cert_chain(*paths)
    return context


async def open_tls(address, ca, server_hostname=None, cert=None, key=None,
                   timeout_ms=HANDSHAKE_TIMEOUT_MS):
    """A Stream over TLS to "host:port", the server verified against `ca` (bytes, PEM
    or DER) and its name (server_hostname, default the host; also sent as SNI);
    cert/key (bytes, PEM) for mutual TLS. A failed handshake is a TlsError naming the cause."""
    host, port_number = split_address(address)
    try:
        context = _tls_context(ca, cert, key)
    except (ssl.SSLError, ValueError) as error:
        raise TlsError(TLS_FAILED, "cannot load CA, certificate or key: " + detail(error)) from None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            host, port_number, ssl=context, server_hostname=server_hostname or host),
            timeout_ms / 1000)
    except asyncio.TimeoutError:
        raise Timeout("TLS handshake with " + address, timeout_ms) from None
    except ssl.SSLCertVerificationError as error:
        reason = _VERIFY_CAUSES.get(error.verify_code) or cause(error)
        raise TlsError(reason, error.verify_message or detail(error)) from None
    except ssl.SSLError as error:
        raise TlsError(cause(error), detail(error)) from None
    return TlsStream(AsyncioStream(reader, writer))
