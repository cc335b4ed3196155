# The board: machine.UART, machine.Pin, machine.ADC. Verified only on hardware.
import asyncio
import binascii

import machine

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
from .stream import AsyncioStream

NAME = "esp32"
_UART_RX_BUFFER = 2048  # one full CIPRXGET=2 reply (1500 bytes) plus headers


def unique_id():
    return binascii.hexlify(machine.unique_id()).decode()


def reset():
    machine.reset()


def deep_sleep(ms):
    machine.deepsleep(ms)


async def open_uart(uart_config):
    uart = machine.UART(
        uart_config.get("id", 1),
        baudrate=uart_config.get("baud", 115200),
        tx=uart_config.get("tx", 27),
        rx=uart_config.get("rx", 26),
        rxbuf=_UART_RX_BUFFER,
    )
    return AsyncioStream(asyncio.StreamReader(uart), asyncio.StreamWriter(uart, {}))


def output_pin(number, value=0):
    return machine.Pin(number, machine.Pin.OUT, value=value)


def input_pin(number):
    return machine.Pin(number, machine.Pin.IN)


def adc_read_mv(number):
    adc = machine.ADC(machine.Pin(number))
    adc.atten(machine.ADC.ATTN_11DB)
    return adc.read_uv() // 1000
