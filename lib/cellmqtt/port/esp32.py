# The board: machine.UART, machine.Pin, machine.ADC (network.PPP: esp32_ppp.py). On a PC it
# runs in the simulated board on stand-ins for machine and network (tools.simboard --port
# esp32). The clock and heap functions are _mp.py's, which the package exports itself.
import asyncio
import binascii
import time

import machine
from micropython import const

from .stream import AsyncioStream

NAME = "esp32"
_UART_RX_BUFFER = const(2048)  # one full CIPRXGET=2 reply (1500 bytes) plus headers


def unique_id():
    return binascii.hexlify(machine.unique_id()).decode()


def reset():
    machine.reset()


deep_sleep = machine.deepsleep  # the function itself: a wrapper would be heap
_SET_SINCE = const(1704067200)  # 2024-01-01: an RTC behind it was never set (it starts at 2000)
# the ESP32's time.time() counts from 2000 (946684800 s after 1970)
_EPOCH = 946684800 if time.gmtime(0)[0] == 2000 else 0


def utc():
    """UTC epoch seconds from the RTC, which runs on through deep sleep and resets;
    None until set_utc() set it."""
    now = time.time() + _EPOCH
    return now if now >= _SET_SINCE else None


def set_utc(seconds):
    t = time.gmtime(seconds - _EPOCH)
    machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


rtc_s = time.time  # never set, the RTC counts seconds from 0 at power-on


def rtc_memory(data=None):
    """RTC memory: deep sleep and resets keep it, a power loss empties it, as the RTC's count."""
    if data is None:
        return machine.RTC().memory()
    machine.RTC().memory(data)


async def open_uart(uart_config):
    """config.json's uart section as config.py checked it: every key filled in."""
    uart = machine.UART(uart_config["id"], baudrate=uart_config["baud"], tx=uart_config["tx"], rx=uart_config["rx"],
                        rxbuf=_UART_RX_BUFFER)
    return _UartStream(uart)


class _UartStream(AsyncioStream):
    """The modem's UART as a Stream that keeps its machine.UART for network.PPP."""

    def __init__(self, uart):
        stream = asyncio.StreamReader(uart)  # MicroPython's Stream: a reader and a writer
        super().__init__(stream, stream)
        self.uart = uart

    async def close(self):
        # machine.UART has no close() for asyncio's wait_closed() to call: deinit it
        if self._writer is None:
            return
        self._writer = None
        self._reader = None
        self.uart.deinit()


def output_pin(number, value=0):
    return machine.Pin(number, machine.Pin.OUT, value=value)


def input_pin(number):
    return machine.Pin(number, machine.Pin.IN)


def adc_read_mv(number):
    adc = machine.ADC(machine.Pin(number))
    adc.atten(machine.ADC.ATTN_11DB)
    return adc.read_uv() // 1000
