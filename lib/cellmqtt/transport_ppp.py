"""The PPP transport (transport.py's seam): a data call and the board's own IP stack
(network.PPP), sockets plain or TLS through port.open_tls. Loaded only when
config["transport"] is "ppp"."""

from . import port
from .modem.ppp import DataCall, PppLink
from .transport import ModemTransport


class PppTransport(ModemTransport):
    """Torn down in the order that avoids MicroPython's PPP faults: sockets (the MQTT
    client closes its own), PPP, then escape and ATH, then the modem off."""

    send_buffer = 512  # a socket sends each write: a telemetry PUBLISH goes out in one

    def __init__(self, config, power, ledger, tls=None):
        ModemTransport.__init__(self, config, power, ledger, tls)
        self.call: DataCall = None  # type: ignore[assignment]  # from the dial to release()
        self.link: PppLink = None  # type: ignore[assignment]

    async def _attach(self):
        modem = self.modem
        await modem.check_sim()
        await modem.wait_registered()
        await self._clock()  # in command mode, before the call takes the UART
        dtr = self.config["pins"]["dtr"]
        # the driver tells the call when the modem is gone
        self.call = modem.call = DataCall(modem.channel, ledger=self.ledger,
                                          dtr=None if dtr is None else port.output_pin(dtr, 0))
        await self.call.dial(self.config["apn"])
        self.link = PppLink(self.call, ledger=self.ledger)
        await self.link.up()

    async def _open_broker(self, broker):
        tls = self.tls
        if tls is None:
            return await self.link.open_tcp(broker["host"], broker["port"], owner="MQTT")
        return await self.link.open(port.open_tls, "%s:%d" % (broker["host"], broker["port"]), tls.ca,
                                    None, tls.cert, tls.key, owner="MQTT")

    async def disconnect(self):
        pass  # release() ends PPP and the call on every path, a good one too

    async def release(self):
        link = self.link
        call = self.call
        try:
            if link is not None:
                await link.down()
        finally:
            try:
                if call is not None:
                    await call.hang_up()
            finally:
                await ModemTransport.release(self)
