# The board: machine.UART, machine.Pin, machine.ADC, network.PPP. On a PC it runs in the
# simulated board on stand-ins for machine and network (tools.simboard --port esp32).
# The clock and heap functions are _mp.py's, which the package exports itself.
import asyncio
import binascii

import machine

from ..power import UART_PINS
from .stream import AsyncioStream

NAME = "esp32"
_UART_RX_BUFFER = 2048  # one full CIPRXGET=2 reply (1500 bytes) plus headers
PPP_READS_UART = True  # network.PPP reads machine.UART itself: the AT reader pauses


def unique_id():
    return binascii.hexlify(machine.unique_id()).decode()


def reset():
    machine.reset()


def deep_sleep(ms):
    machine.deepsleep(ms)


_SET_SINCE = 1704067200  # 2024-01-01: an RTC behind it was never set (it starts at 2000)


def _epoch():
    # the ESP32's time.time() counts from 2000 (946684800 s after 1970)
    import time

    return 946684800 if time.gmtime(0)[0] == 2000 else 0


def utc():
    """UTC epoch seconds from the RTC, which runs on through deep sleep and resets;
    None until set_utc() set it."""
    import time

    now = time.time() + _epoch()
    return now if now >= _SET_SINCE else None


def set_utc(seconds):
    import time

    t = time.gmtime(seconds - _epoch())
    machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


async def open_uart(uart_config):
    uart = machine.UART(uart_config.get("id", 1), baudrate=uart_config.get("baud", 115200),
                        tx=uart_config.get("tx", UART_PINS["tx"]), rx=uart_config.get("rx", UART_PINS["rx"]),
                        rxbuf=_UART_RX_BUFFER)
    return _UartStream(uart)


class _UartStream(AsyncioStream):
    """The modem's UART as a Stream that keeps its machine.UART for network.PPP."""

    def __init__(self, uart):
        super().__init__(asyncio.StreamReader(uart), asyncio.StreamWriter(uart, {}))
        self.uart = uart

    async def close(self):
        # machine.UART has no close() for asyncio's wait_closed() to call: deinit it
        if self._writer is None:
            return
        self._writer = None
        self._reader = None
        self.uart.deinit()


async def open_tcp(address):
    """A plain TCP Stream through lwIP (over PPP when that is the link that is up)."""
    host, _, number = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(number))
    return AsyncioStream(reader, writer)


class _BoardPpp:
    """network.PPP (MicroPython >= 1.24) over the modem's UART, with the calls of
    modem/ppp.py's PppLink. active(False) also takes the UART's RX-idle interrupt back
    so that the AT channel reads the UART again. Its PPP negotiation is verified only
    on hardware (the simulated board's stand-in has no PPP peer)."""

    def __init__(self, uart):
        import network

        self._uart = uart
        self._ppp = network.PPP(uart)

    def connect(self):
        self._ppp.connect()

    def isconnected(self):
        return self._ppp.isconnected()

    def ipconfig(self, name):
        return self._ppp.ipconfig(name)

    def disconnect(self):
        disconnect = getattr(self._ppp, "disconnect", None)  # missing before 1.25 (issue 17079)
        if disconnect is not None:
            disconnect()

    def active(self, *state):
        result = self._ppp.active(*state)
        if state and not state[0]:
            self._uart.irq(None)
        return result


def new_ppp(call):
    """A fresh PPP stack for a data call in data mode (one per window, issue 11419)."""
    return _BoardPpp(call.channel.stream.uart)


def output_pin(number, value=0):
    return machine.Pin(number, machine.Pin.OUT, value=value)


def input_pin(number):
    return machine.Pin(number, machine.Pin.IN)


def adc_read_mv(number):
    adc = machine.ADC(machine.Pin(number))
    adc.atten(machine.ADC.ATTN_11DB)
    return adc.read_uv() // 1000
