# The board's PPP: network.PPP over the modem's UART, and TCP through lwIP over it; apart
# from esp32.py so that a board on the modem's own TCP stack never loads it (the port
# package gives these names from here; config.transport_factory loads it at boot for PPP).
import asyncio

from .stream import AsyncioStream

PPP_READS_UART = True  # network.PPP reads machine.UART itself: the AT reader pauses


async def open_tcp(address):
    """A plain TCP Stream through lwIP (over PPP when that is the link that is up)."""
    host, _, number = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(number))
    return AsyncioStream(reader, writer)


def new_ppp(call):
    """A fresh PPP stack for a data call in data mode (one per window, issue 11419)."""
    return _BoardPpp(call.channel.stream.uart)


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
