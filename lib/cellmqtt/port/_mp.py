# What the ESP32 and the unix port share: MicroPython's own clock, sleep and gc.
import asyncio
import gc
import time

from micropython import const

ticks_ms = time.ticks_ms
ticks_diff = time.ticks_diff
ticks_add = time.ticks_add
sleep_ms = time.sleep_ms
# the functions themselves, not wrappers: each wrapper is heap on a board
asleep_ms = asyncio.sleep_ms
mem_free = gc.mem_free
mem_alloc = gc.mem_alloc
collect = gc.collect


def mem_total():
    return gc.mem_free() + gc.mem_alloc()


_GRAIN = const(16)  # bytes: an ESP32 heap block


def largest_free():
    """The largest block one allocation gets now (a bytearray's items), to within
    _GRAIN: a binary search of trial allocations, each garbage at once. A trial that
    does not fit collects before it fails, so the figure is the one after gc; the
    heap holds nothing more afterwards. On a split heap (ESP32) a trial may add an
    area for a moment, which the next collection gives back empty."""
    low = 0
    high = gc.mem_free() + 1  # nothing larger can fit
    while high - low > _GRAIN:
        size = (low + high) // 2
        try:
            bytearray(size)
            low = size
        except MemoryError:
            high = size
    return low


async def open_tls(address, ca, server_hostname=None, cert=None, key=None, timeout_ms=None):
    """A Stream over TLS through MicroPython's mbedTLS (see _tls.open_mbedtls): the
    code loads at first use, as a device without TLS should not pay RAM for it."""
    from ._tls import open_mbedtls

    return await open_mbedtls(address, ca, server_hostname, cert, key, timeout_ms)
