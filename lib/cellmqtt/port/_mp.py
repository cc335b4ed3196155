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
hold_ms = asyncio.sleep_ms
mem_free = gc.mem_free
mem_alloc = gc.mem_alloc
collect = gc.collect


def mem_total():
    return gc.mem_free() + gc.mem_alloc()


_GRAIN = const(16)  # bytes: an ESP32 heap block


def largest_free():
    """The largest block one allocation gets now, to within _GRAIN: a binary search of
    trial allocations with the collector off (a failed trial collects nothing). A trial
    is a BytesIO's buffer, which close() frees at once, so one that fitted is not in the
    next one's way. What the trials leave (their BytesIOs, the MemoryErrors) may lie in
    the largest block: it is collected, and a trial just over the answer confirms it;
    if that fits, the search goes on with trials that collect. The figure is the one
    after gc. The search ends with the largest block taken by garbage until the next
    collection, as a search of bytearrays left it: what the firmware allocates next
    fills smaller holes first (without it the block splits, about 6 KB smaller in the
    median over a soak). On a split heap (ESP32) a trial may add an area for a moment,
    which the next collection gives back empty."""
    import io  # here: a global more would step the module's table up

    low = 0
    high = gc.mem_free() + 1  # nothing larger can fit
    gc.disable()
    try:  # a Ctrl-C at the REPL's `free` must not leave the collector off
        while True:
            while high - low > _GRAIN:
                size = (low + high) // 2
                try:
                    io.BytesIO(size).close()
                    low = size
                except MemoryError:
                    high = size
            if gc.isenabled():
                return low
            gc.collect()
            try:
                io.BytesIO(high).close()
            except MemoryError:
                gc.enable()
                bytearray(low)
                return low
            gc.enable()
            low = high
            high = gc.mem_free() + 1
    finally:
        gc.enable()


async def open_tls(address, ca, server_hostname=None, cert=None, key=None, timeout_ms=None):
    """A Stream over TLS through MicroPython's mbedTLS (see _tls.open_mbedtls): the
    code loads at first use, as a device without TLS should not pay RAM for it."""
    from ._tls import open_mbedtls

    return await open_mbedtls(address, ca, server_hostname, cert, key, timeout_ms)
