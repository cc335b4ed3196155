# What the ESP32 and the unix port share: MicroPython's own clock, sleep and gc.
import asyncio
import gc
import time

ticks_ms = time.ticks_ms
ticks_diff = time.ticks_diff
ticks_add = time.ticks_add
sleep_ms = time.sleep_ms


async def asleep_ms(ms):
    await asyncio.sleep_ms(ms)


def mem_free():
    return gc.mem_free()


def mem_alloc():
    return gc.mem_alloc()


def mem_total():
    return gc.mem_free() + gc.mem_alloc()


def collect():
    gc.collect()


async def open_tls(address, ca, server_hostname=None, cert=None, key=None, timeout_ms=None):
    """A Stream over TLS through MicroPython's mbedTLS (see _tls.open_mbedtls): the
    code loads at first use, as a device without TLS should not pay RAM for it."""
    from ._tls import open_mbedtls

    return await open_mbedtls(address, ca, server_hostname, cert, key, timeout_ms)
