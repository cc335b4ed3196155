from cellmqtt import port
from support import MICROPYTHON, run


def test_ticks_wrap_like_micropython():
    start = port.ticks_ms()
    later = port.ticks_add(start, 1500)
    assert port.ticks_diff(later, start) == 1500
    assert port.ticks_diff(start, later) == -1500
    # across the wrap point of the clock
    near_end = port.ticks_add(0, -5)
    assert port.ticks_diff(port.ticks_add(near_end, 10), near_end) == 10


def test_sleep_advances_the_clock():
    start = port.ticks_ms()
    port.sleep_ms(20)
    assert port.ticks_diff(port.ticks_ms(), start) >= 19


def test_async_sleep():
    async def nap():
        start = port.ticks_ms()
        await port.asleep_ms(15)
        return port.ticks_diff(port.ticks_ms(), start)

    assert run(nap()) >= 14


def test_memory_figures_are_consistent():
    port.mem_alloc()  # under CPython, tracing starts at the first figure asked for
    held = bytearray(1000)
    port.collect()
    used = port.mem_alloc()
    free, total = port.mem_free(), port.mem_total()
    assert 1000 <= used < total and len(held) == 1000
    # exact under MicroPython; under CPython each figure is a fresh tracemalloc reading
    assert free + used == total if MICROPYTHON else abs(free + used - total) < 1024


def test_unique_id_is_hex():
    device = port.unique_id()
    assert len(device) >= 8
    int(device, 16)


def test_pins_hold_levels():
    # GPIOs the modem wiring does not use: the same answer with or without an emulator
    led = port.output_pin(14, 0)
    led.value(1)
    assert led.value() == 1
    led.value(0)
    assert led.value() == 0
    assert port.input_pin(13).value() == 0
