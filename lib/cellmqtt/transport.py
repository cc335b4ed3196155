"""The upload window's way to the broker, behind one seam. A transport is made per
window by a factory `make(config, power, ledger, tls)` and has:

  await connect()     power the modem on, bring the data path up, open the broker's
                      stream (plain TCP, or TLS when `tls` is given); returns it
  await disconnect()  end the data path gracefully, after a good session
  await release()     on every path, once: nothing held, the modem off
  power_lost()        STATUS fell (a brown-out): fail what is waiting on the modem now
  send_buffer         bytes of the MQTT client's own send buffer for its streams

config.transport_factory() gives the factory for config["transport"] at boot: the
modem's own TCP and TLS stack here, or PPP (transport_ppp.py, imported only for it).
DutyCycle takes any factory, so a window also runs on fakes.
"""

from . import port
from .errors import ModemError, Timeout
from .modem import Sim7600
from .power import OFF


class ModemTransport:
    """The SIM7600's own stack: AT+CIPOPEN links, AT+CCH* for TLS. connect() also reads
    the network's time: utc (epoch seconds) or None, and clock_error, the text of the
    error that kept it None (a garbled or impossible clock never fails the window)."""

    # the modem's links gather a round of writes into one send command (link.py): the
    # client's buffer needs to hold a packet's header only, its payload goes as it is
    send_buffer = 128

    def __init__(self, config, power, ledger, tls=None):
        self.config = config
        self.power = power
        self.ledger = ledger
        self.tls = tls  # secrets.TlsFiles, or None: plain TCP
        self.modem: Sim7600 = None  # type: ignore[assignment]  # from connect() to release()
        self._utc = None  # the network's time as read during attach: (seconds, ticks_ms)
        self.clock_error = None

    @property
    def utc(self):
        """The network's time now, epoch seconds, or None: the duty cycle sets its clock
        well after attach (after CONNECT), so the time since the reading counts."""
        clock = self._utc
        if clock is None:
            return None
        return clock[0] + (port.ticks_diff(port.ticks_ms(), clock[1]) + 500) // 1000

    async def connect(self):
        clock = self.config.get("time", {}).get("source", "network")  # "network", "ntp" or "off"
        modem = self.modem = await Sim7600.open(self.config["uart"], self.config["modem"]["timeouts"],
                                                 ledger=self.ledger, clock=clock)

        async def booted():
            return modem.booted

        await self.power.power_on(booted)
        await modem.power_up()
        await self._attach()
        return await self._open_broker(self.config["broker"])

    async def _attach(self):
        await self.modem.attach(self.config["apn"])
        await self._clock()

    async def _clock(self):
        """The network's time into utc, or the reason why not into clock_error."""
        try:
            self._utc = await self.modem.network_time()
        except (ModemError, Timeout) as error:
            self.clock_error = str(error)

    async def _open_broker(self, broker):
        tls = self.tls
        if tls is None:
            return await self.modem.open_link(broker["host"], broker["port"], owner="MQTT")
        return await self.modem.open_tls_link(broker["host"], broker["port"], ca=tls.ca, cert=tls.cert,
                                              key=tls.key, owner="MQTT")

    async def disconnect(self):
        await self.modem.net_close()

    async def release(self):
        modem = self.modem
        if modem is None:
            return
        try:
            if self.power.state != OFF:
                await self.power.power_off(modem.power_off)
        finally:
            self.modem = None  # type: ignore[assignment]
            await modem.close()

    def power_lost(self):
        if self.modem is not None:
            self.modem.channel.power_lost()
