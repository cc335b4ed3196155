# MicroPython's unix port on a PC: real MicroPython clock and gc, emulator wiring.
import asyncio
import time

from ._mp import (  # noqa: F401
    collect,
    largest_free,
    mem_alloc,
    mem_free,
    mem_total,
    open_tls,
    ticks_add,
    ticks_diff,
    ticks_ms,
)
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
    output_pin,
    reset,
    rtc_memory,
    rtc_s,
    scaled_ms,
    set_utc,
    unique_id,
    utc,
)
from ._pc import open_uart_tcp as open_uart  # noqa: F401

NAME = "unix"


def sleep_ms(ms):
    time.sleep_ms(scaled_ms(ms))


async def asleep_ms(ms):
    await asyncio.sleep_ms(scaled_ms(ms))


hold_ms = asleep_ms

if clock.virtual:  # ticks wrap at 2**30 as on a board (here they would at 2**62)
    from ._pc import asleep_ms, hold_ms, sleep_ms, ticks_add, ticks_diff, ticks_ms  # noqa: F401,F811
