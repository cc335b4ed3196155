"""SIM7600 driver: bring-up, attach, the modem's own TCP/IP stack and its ten links.

It runs on an AtChannel (which owns the UART). Commands whose result comes as a URC
(AT+NETOPEN, AT+CIPOPEN, ...) are exchanges of the channel, which take that line in
either order with the OK (docs/modem.md, Framing and Field behaviours); one URC
subscription takes what the stack reports unasked: +CIPRXGET: 1 (data waits),
+IPCLOSE, +CIPEVENT, the network's time (+CTZV) and the boot URCs RDY and +CPIN.
Nothing the modem keeps while on is sent twice in a window, and a window's last
AT+NETCLOSE is left to AT+CPOF (docs/modem.md, A window's commands).

A typical duty cycle:
    driver = await Sim7600.open(uart_config)     # or Sim7600(channel); driver.start()
    await driver.power_up(); await driver.attach("apn")
    link = await driver.open_link("broker", 1883)  ...  await link.close()
    await driver.net_close(); await driver.power_off(); await driver.close()
"""


from .. import port, unload
from .._const import const
from ..errors import AtError, ConfigError, StateError
from ..ledger import ledger as device_ledger
from . import attached
from .at import AtChannel
from .at_parser import split_fields, text, to_int
from .link import Link, number_for

MAX_LINKS = const(10)  # the modem's link numbers 0-9
POLL_MS = const(1000)  # SIM-busy poll interval: a few queries per bound

NET_DOWN = "down"
NET_OPEN = "open"
NET_LOST = "lost"  # +CIPEVENT: NETWORK CLOSED UNEXPECTEDLY; net_open() recovers
NET_CLOSING = "closing"  # closed here; AT+NETCLOSE still owed (net_close())

CLOSE_REASONS = ("closed by local", "closed by remote", "send timeout")  # +IPCLOSE <reason>
_URCS = (b"+CIPRXGET:", b"+IPCLOSE:", b"+CIPEVENT:", b"RDY", b"+CPIN:", b"+CTZV:")


async def set_apn(channel, apn):
    """AT+CGDCONT=1,"IP","<apn>"; an APN that would break the command line is a
    ConfigError before anything is sent."""
    if '"' in apn or "\r" in apn or "\n" in apn:
        raise ConfigError("modem.apn", "no quotes or line breaks")
    await channel.command('AT+CGDCONT=1,"IP","%s"' % apn)


class Sim7600:
    zone_auto = False  # AT+CTZU=1 sent since the MCU booted (the modem keeps it: docs/modem.md)

    def __init__(self, channel, ledger=None, owns_channel=False, poll_ms=POLL_MS, clock="network"):
        self.channel = channel
        self.poll_ms = poll_ms
        self.clock = clock  # the time source: "network" (+CTZV or AT+CCLK?), "ntp" or "off"
        self.zone_report = None  # (the +CTZV line, ticks_ms) of this boot
        self.ledger = device_ledger if ledger is None else ledger
        self._owns_channel = owns_channel
        self.slots: list = [None] * MAX_LINKS  # the holder of Links (link.Link)
        self.dirty = 0
        self._sub = None
        self.net = NET_DOWN
        self.ip = None
        self.booted = False  # RDY seen
        self.sim = None  # the last +CPIN state since the modem booted
        self.modem_table = None  # {number: (host, port)} from the last AT+CIPOPEN?
        self.modem_table_ms = None  # ticks_ms when it was read
        self.call = None  # the DataCall of the PPP transport, once data_call() made it
        self.tls = None  # the SSL service (tls.py), made by the first open_tls_link()

    @classmethod
    async def open(cls, uart_config, timeouts=None, ledger=None, clock="network"):
        """Open the UART through the port layer and start a driver that owns it."""
        stream = await port.open_uart(uart_config)
        try:
            channel = AtChannel(stream, timeouts=timeouts, ledger=ledger, detail=uart_config.get("name", "UART"))
        except BaseException:
            await stream.close()
            raise
        try:
            driver = cls(channel, ledger=ledger, owns_channel=True, clock=clock)
            driver.start()
        except BaseException:  # a MemoryError: the channel gives its UART and entries back
            await channel.close()
            raise
        return driver

    def start(self):
        """Start the channel's reader, subscribe to the URCs, attach to `netstat`."""
        if self._sub is not None:
            return
        self.channel.start()
        self._sub = self.channel.subscribe(_URCS, self._on_urc, "sim7600 stack")
        self.channel.on_dead = self._on_dead
        attached[0] = self  # for netstat

    async def close(self):
        """Close every link (and the network, when net_close() left that to now),
        unsubscribe, detach from `netstat`; close the channel if this driver opened it.
        Does not power the modem down. Idempotent."""
        for link in self.slots:
            if link is not None:
                await link.close()
        try:
            if self.net == NET_CLOSING and self.channel.closed_reason is None:
                await self._net_close()
        finally:  # a failed AT+NETCLOSE still lets go of everything
            if self.tls is not None:
                await self.tls.close()
            if self._sub is not None:
                self.channel.unsubscribe(self._sub)
                self._sub = None
            self.channel.on_dead = None
            if attached[0] is self:
                attached[0] = None
            if self._owns_channel:
                await self.channel.close()

    # bring-up (bringup.py: loaded for each call and dropped after it, so that a window's
    # peak never holds its code)

    async def power_up(self):
        """bringup.power_up: ATE0 until the modem answers, AT+CTZU=1 once per MCU boot."""
        return await self._bringup("power_up")

    async def check_sim(self):
        """bringup.check_sim: AT+CPIN? until READY."""
        return await self._bringup("check_sim")

    async def signal(self):
        """bringup.signal: (rssi, ber) from AT+CSQ."""
        return await self._bringup("signal")

    async def wait_registered(self, timeout_ms=None):
        """bringup.wait_registered: the stat (1 or 5) once registered."""
        return await self._bringup("wait_registered", timeout_ms)

    async def attach(self, apn):
        """bringup.attach: SIM, registration, APN, manual receive mode, NETOPEN."""
        return await self._bringup("attach", apn)

    async def _bringup(self, name, *args):
        from . import bringup

        try:
            return await getattr(bringup, name)(self, *args)
        finally:
            unload("cellmqtt.modem.bringup")

    # the network (PDP context of the modem's stack)

    async def net_open(self):
        """bringup.net_open: AT+NETOPEN and its URC (an open network closed first)."""
        return await self._bringup("net_open")

    async def net_close(self):
        """Links still held here are closed with reason "network closed"; AT+NETCLOSE
        (which closes every link on the modem) waits for the next command that needs
        it (net_open(), close()): AT+CPOF, the usual next one, makes it needless."""
        if self.tls is not None:
            await self.tls.close()
        self._drop_all("network closed")
        self.net = NET_CLOSING

    async def _net_close(self):
        """AT+NETCLOSE and its URC; not open is not an error."""
        if self.tls is not None:
            await self.tls.close()
        self._drop_all("network closed")
        try:
            await self.channel.command("AT+NETCLOSE", urc=True)
        except AtError:  # +IP ERROR: Network is already closed
            pass
        self.net = NET_DOWN

    async def power_off(self):
        """AT+CPOF: the modem answers OK, then deregisters and switches off."""
        self._drop_all("modem powered off")
        self.net = NET_DOWN  # nothing owed: power-off ends the network whether or not AT+CPOF answers
        await self.channel.command("AT+CPOF")
        self.booted = False
        self.sim = None

    # the network's time

    async def network_time(self):
        """UTC epoch seconds, or None when the clock source is "off" (clock.network_time).
        Its code is loaded for the read and dropped after it: at a window's peak it is not
        in the heap."""
        if self.clock == "off":
            return None
        from .clock import network_time

        try:
            return await network_time(self)
        finally:
            unload("cellmqtt.modem.clock")

    # links

    async def open_link(self, host, port_number, owner="LINK"):
        """A new Link to host:port through the modem (AT+CIPOPEN, then its URC)."""
        if self.net != NET_OPEN:
            raise StateError("modem network", self.net, "open a link")
        return await Link(self, number_for(self, host, port_number, "modem links"), host, port_number, owner).open()

    async def open_tls_link(self, host, port, ca, cert=None, key=None, owner="LINK", server_name=None):
        """A TLS session to host:port through the modem's SSL stack (tls.py), verified
        against the CA (PEM bytes); cert and key (PEM) for mutual TLS. A Stream like
        open_link()'s, ledgered as "tls #<s> host:port"."""
        from .tls import open_session  # only a device that uses TLS pays for it

        return await open_session(self, host, port, ca, cert, key, owner, server_name)

    def _drop_all(self, reason):
        """Every link is gone with the network (or the modem): none is dirty, no IP."""
        for link in self.slots:
            if link is not None:
                link.modem_dropped(reason)
        if self.tls is not None:
            self.tls.drop_all(reason)
        self.dirty = 0
        self.ip = None

    async def read_modem_links(self):
        """The modem's own socket table (AT+CIPOPEN?) as {number: (host, port)}; kept
        in modem_table with the time it was read, for `netstat`."""
        from .netstat import read_tables  # only the REPL's netstat pays for it

        return await read_tables(self)

    def netstat_rows(self):
        """(number, local ip, remote, state, modem, leak) for each number either side
        holds, then the TLS sessions as "tls0", "tls1" (netstat.rows)."""
        from .netstat import rows

        return rows(self)

    # URCs

    def _on_urc(self, line, chunk):
        if chunk is not None:
            return  # push-mode data: the driver uses manual receive (AT+CIPRXGET=1)
        fields = split_fields(line)
        first = to_int(fields[0]) if fields else None
        if line.startswith(b"+CIPRXGET:"):  # by name and first field: `+CIPRXGET:1,0` is seen too
            first = to_int(fields[1]) if first == 1 and len(fields) == 2 else None
        link = self.slots[first] if first is not None and 0 <= first < MAX_LINKS else None
        if line.startswith(b"+CIPRXGET:"):
            if link is not None:
                link.data_waiting()
        elif line.startswith(b"+IPCLOSE:"):
            code = to_int(fields[1]) if len(fields) == 2 else None
            reason = CLOSE_REASONS[code] if code is not None and 0 <= code < len(CLOSE_REASONS) else "closed"
            if first is not None:
                self.dirty &= ~(1 << first)
            if link is not None:
                link.modem_dropped(reason, True)
        elif line.startswith(b"+CIPEVENT:"):
            if b"NETWORK CLOSED UNEXPECTEDLY" in line:
                self._drop_all("network closed unexpectedly")
                self.net = NET_LOST
        elif line == b"RDY":  # a boot: mid-session it means the modem restarted
            self._drop_all("modem restarted")
            self.net = NET_DOWN
            self.booted = True
            self.sim = None  # +CPIN follows when the SIM is ready
            self.zone_report = None
        elif line.startswith(b"+CPIN:"):
            self.sim = text(fields[0]) if fields else None
        elif line.startswith(b"+CTZV:"):
            self.zone_report = (line, port.ticks_ms())

    def data_call(self, dtr=None, owner="PPP"):
        """A DataCall (modem/ppp.py) on this channel: PPP instead of the modem's stack.
        dtr: an output pin wired to the modem's DTR, or None."""
        from .ppp import DataCall  # here: the AT transport never pays for its RAM

        self.call = DataCall(self.channel, ledger=self.ledger, dtr=dtr, owner=owner)
        return self.call

    def _on_dead(self, reason):
        if self.call is not None:
            self.call.carrier_lost("modem gone: %s" % reason)
        self._drop_all("modem gone: %s" % reason)
        self.net = NET_DOWN
        self.sim = None
