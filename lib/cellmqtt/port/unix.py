# MicroPython's unix port on a PC: real MicroPython clock and gc, emulator wiring.
from ._mp import (  # noqa: F401
    asleep_ms,
    collect,
    mem_alloc,
    mem_free,
    mem_total,
    sleep_ms,
    ticks_add,
    ticks_diff,
    ticks_ms,
)
from ._pc import (  # noqa: F401
    RESET_EXIT_CODE,
    adc_read_mv,
    configure,
    input_pin,
    open_tcp,
    output_pin,
    reset,
    unique_id,
)
from ._pc import open_uart_tcp as open_uart  # noqa: F401

NAME = "unix"
