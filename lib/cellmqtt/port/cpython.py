# CPython on a PC: MicroPython's wrapping tick arithmetic, heap figures from
# tracemalloc against a configured heap size, and a real modem through pyserial.
import asyncio
import os
import time
import tracemalloc

from ._pc import (  # noqa: F401
    RESET_EXIT_CODE,
    adc_read_mv,
    configure,
    deep_sleep,
    input_pin,
    open_tcp,
    open_uart_tcp,
    output_pin,
    reset,
    scaled_ms,
    unique_id,
)

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

