"""SIM7600 driver: bring-up, attach, the modem's own TCP/IP stack and its ten links.

It runs on an AtChannel (which owns the UART) and makes one URC subscription for
everything the stack reports later: +NETOPEN, +NETCLOSE, +CIPOPEN, +CIPSEND,
+CIPCLOSE, +CIPRXGET: 1, +IPCLOSE, +CIPEVENT and the boot URCs RDY and +CPIN. Results
that come as "OK now, URC later" are stored in fields by that one handler, and lines
that come inside the response go through the same handler, so both orders of the
real modem work (docs/modem.md, Framing and Field behaviours).

A typical duty cycle:
    driver = await Sim7600.open(uart_config)     # or Sim7600(channel); driver.start()
    await driver.power_up(); await driver.attach("apn")
    link = await driver.open_link("broker", 1883)  ...  await link.close()
    await driver.net_close(); await driver.power_off(); await driver.close()
"""

import asyncio

from .. import port
from .._const import const
from ..errors import AtError, ConfigError, LimitExceeded, StateError
from ..ledger import LINK
from ..ledger import ledger as device_ledger
from . import attached, commands
from .at import AtChannel
from .at_parser import split_fields, text, to_int
from .link import Link, give_back, net_error, netstat_rows
from .timeouts import wait_until

MAX_LINKS = const(10)  # the modem's link numbers 0-9
RX_BUFFER = const(1500)  # one AT+CIPRXGET=2 read (its maximum); the rest waits in the modem
POLL_MS = const(1000)  # SIM-busy poll interval: a few queries per bound

NET_DOWN = "down"
NET_OPEN = "open"
NET_LOST = "lost"  # +CIPEVENT: NETWORK CLOSED UNEXPECTEDLY; net_open() recovers

CLOSE_REASONS = ("closed by local", "closed by remote", "send timeout")  # +IPCLOSE <reason>
_URCS = (b"+CIPRXGET:", b"+IPCLOSE:", b"+CIPEVENT:", b"+CIPOPEN:", b"+CIPSEND:",
         b"+CIPCLOSE:", b"+NETOPEN:", b"+NETCLOSE:", b"RDY", b"+CPIN:")


class Sim7600:
    def __init__(self, channel, ledger=None, owns_channel=False, poll_ms=POLL_MS):
        self.channel = channel
        self.poll_ms = poll_ms
        self._ledger = device_ledger if ledger is None else ledger
        self._owns_channel = owns_channel
        self._slots: list = [None] * MAX_LINKS
        self._buffers: list = [None] * MAX_LINKS
        self._dirty = 0  # bit n: link n closed without the modem confirming it
        self._event = asyncio.Event()
        self._sub = None
        self._netopen_err = None
        self._netclose_err = None
        self.net = NET_DOWN
        self.ip = None
        self.booted = False  # RDY seen
        self.sim = None  # the last +CPIN state since the modem booted
        self.modem_table = None  # {number: (host, port)} from the last AT+CIPOPEN?
        self.modem_table_ms = None  # ticks_ms when it was read
        self.call = None  # the DataCall of the PPP transport, once data_call() made it
        self.tls = None  # the SSL service (tls.py), made by the first open_tls_link()

    @classmethod
    async def open(cls, uart_config, timeouts=None, ledger=None):
        """Open the UART through the port layer and start a driver that owns it."""
        stream = await port.open_uart(uart_config)
        try:
            channel = AtChannel(stream, timeouts=timeouts, ledger=ledger, detail=uart_config.get("name", "UART"))
        except BaseException:
            await stream.close()
            raise
        try:
            driver = cls(channel, ledger=ledger, owns_channel=True)
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
        """Close every link, unsubscribe, detach from `netstat`; close the channel if
        this driver opened it. Does not power the modem down. Idempotent."""
        for link in self._slots:
            if link is not None:
                await link.close()
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

    # bring-up (the work is in commands.py; the driver keeps what it learns)

    async def power_up(self):
        """Wait until the modem answers AT (within "boot"), then ATE0 and AT+CMEE=1."""
        await commands.power_up(self.channel)

    async def check_sim(self):
        """AT+CPIN? until READY; SimError otherwise (SIM busy retried within "sim")."""
        self.sim = None
        self.sim = await commands.sim_ready(self.channel, self.poll_ms)

    async def signal(self):
        """(rssi, ber) from AT+CSQ; 99 means not known (99,99: no signal)."""
        return await commands.signal(self.channel)

    async def wait_registered(self, timeout_ms=None):
        """1 (home) or 5 (roaming) once registered; RegistrationDenied, NoSignal or
        Timeout otherwise (see commands.wait_registered)."""
        return await commands.wait_registered(self.channel, timeout_ms)

    async def set_apn(self, apn):
        await commands.set_apn(self.channel, apn)

    async def attach(self, apn):
        """SIM, registration, APN, manual receive mode, NETOPEN: ready for links. The
        SIM is not asked when the modem reported +CPIN: READY since it booted."""
        if self.sim != "READY":
            await self.check_sim()
        await self.wait_registered()
        await self.set_apn(apn)
        await self.channel.command("AT+CIPRXGET=1")
        await self.net_open()

    # the network (PDP context of the modem's stack)

    async def net_open(self):
        """AT+NETOPEN and its +NETOPEN URC; an already open network is closed and
        opened again so that no link of an earlier session survives. Returns the IP."""
        if self.net != NET_DOWN:
            await self.net_close()
        channel = self.channel
        timeout_ms = channel.timeout("+NETOPEN")
        started = port.ticks_ms()
        try:
            await self._netopen(timeout_ms)
        except AtError as error:
            if error.kind != "IP" or "already opened" not in error.code:
                raise
            await self.net_close()  # a session before ours left it open
            started = port.ticks_ms()
            await self._netopen(timeout_ms)
        await wait_until(self._event, self._netopen_done, "+NETOPEN URC", timeout_ms, started)
        if self._netopen_err:
            raise net_error("NETOPEN", self._netopen_err)
        self.net = NET_OPEN
        self.ip = await commands.ip_address(channel)
        return self.ip

    async def _netopen(self, timeout_ms):
        self._netopen_err = None
        try:
            response = await self.channel.command("AT+NETOPEN", timeout_ms=timeout_ms)
        except AtError as error:
            self.take(error.lines)
            if self._netopen_err:
                raise net_error("NETOPEN", self._netopen_err)
            raise
        self.take(response.lines)

    def _netopen_done(self):
        return self._netopen_err is not None

    async def net_close(self):
        """AT+NETCLOSE (closes every link on the modem) and its URC. Links still held
        here are closed with reason "network closed". Not open is not an error."""
        if self.tls is not None:
            await self.tls.close()
        self._drop_all("network closed")
        channel = self.channel
        timeout_ms = channel.timeout("+NETCLOSE")
        started = port.ticks_ms()
        self._netclose_err = None
        try:
            response = await channel.command("AT+NETCLOSE", timeout_ms=timeout_ms)
            self.take(response.lines)
            await wait_until(self._event, self._netclose_done, "+NETCLOSE URC", timeout_ms, started)
        except AtError as error:  # +NETCLOSE: 2 ERROR, +IP ERROR: Network is already closed
            self.take(error.lines)
        self._dirty = 0
        self.net = NET_DOWN
        self.ip = None

    def _netclose_done(self):
        return self._netclose_err is not None

    async def power_off(self):
        """AT+CPOF: the modem answers OK, then deregisters and switches off."""
        self._drop_all("modem powered off")
        await self.channel.command("AT+CPOF")
        self._dirty = 0
        self.net = NET_DOWN
        self.ip = None
        self.booted = False
        self.sim = None

    # links

    async def open_link(self, host, port_number, owner="LINK"):
        """A new Link to host:port through the modem (AT+CIPOPEN, then its URC)."""
        if '"' in host or "\r" in host or "\n" in host or not 0 < port_number < 65536:
            raise ConfigError("link address", "a host without quotes or line breaks, a port 1-65535")
        if self.net != NET_OPEN:
            raise StateError("modem network", self.net, "open a link")
        number = self._free_number()
        buffer = self._buffers[number]
        if buffer is None:
            buffer = self._buffers[number] = bytearray(RX_BUFFER)
        link = Link(self, number, host, port_number, buffer)
        self._slots[number] = link
        link.fd = self._ledger.acquire(LINK, owner, "#%d %s:%d" % (number, host, port_number))
        dirty = self._dirty & (1 << number)
        self._dirty &= ~(1 << number)
        try:
            await link.open(dirty)
        except BaseException as error:  # cancellation too: the number must come back
            await link.abort(error)
            raise
        return link

    async def open_tls_link(self, host, port, ca, cert=None, key=None, owner="LINK", server_name=None):
        """A TLS session to host:port through the modem's SSL stack (tls.py), verified
        against the CA (PEM bytes); cert and key (PEM) for mutual TLS. A Stream like
        open_link()'s, ledgered as "tls #<s> host:port"."""
        if self.net != NET_OPEN:
            raise StateError("modem network", self.net, "open a TLS session")
        if self.tls is None:
            from .tls import TlsService  # only a device that uses TLS pays for it

            self.tls = TlsService(self, self._ledger)
        return await self.tls.open(host, port, ca, cert, key, owner, server_name)

    def _free_number(self):
        for number in range(MAX_LINKS):
            if self._slots[number] is None:
                return number
        raise LimitExceeded("modem links", MAX_LINKS)

    def links(self):
        """The links this driver holds, by number."""
        return [link for link in self._slots if link is not None]

    def release(self, link):
        """Give a link's number and ledger entry back (Link calls this once closed)."""
        give_back(self._slots, self._buffers, self._ledger, link)

    def mark_dirty(self, number):
        self._dirty |= 1 << number

    def _drop_all(self, reason):
        for link in self._slots:
            if link is not None:
                link.modem_dropped(reason)
        if self.tls is not None:
            self.tls.drop_all(reason)

    async def read_modem_links(self):
        """The modem's own socket table (AT+CIPOPEN?) as {number: (host, port)}; kept
        in modem_table with the time it was read, for `netstat`."""
        table = await commands.link_table(self.channel)
        if self.tls is not None:
            await self.tls.read_table()
        self.modem_table = table
        self.modem_table_ms = port.ticks_ms()
        return table

    def netstat_rows(self):
        """(number, local ip, remote, state, modem, leak) for each number either side
        holds (link.netstat_rows), then the TLS sessions as "tls0", "tls1"."""
        rows = netstat_rows(self._slots, self.modem_table, self.ip or "?")
        if self.tls is not None:
            rows.extend(netstat_rows(self.tls.slots, self.tls.modem_table, self.ip or "?", "tls"))
        return rows

    # URCs

    def take(self, lines):
        """Route information lines that came inside a response like the URCs."""
        for line in lines:
            self._on_urc(line, None)

    def _on_urc(self, line, chunk):
        if chunk is not None:
            return  # push-mode data: the driver uses manual receive (AT+CIPRXGET=1)
        fields = split_fields(line)
        first = to_int(fields[0]) if fields else None
        link = self._slots[first] if first is not None and 0 <= first < MAX_LINKS else None
        if line.startswith(b"+CIPRXGET:"):  # by name and first field: `+CIPRXGET:1,0` is seen too
            number = to_int(fields[1]) if first == 1 and len(fields) == 2 else None
            if number is not None and 0 <= number < MAX_LINKS and self._slots[number] is not None:
                self._slots[number].data_waiting()
        elif line.startswith(b"+IPCLOSE:"):
            code = to_int(fields[1]) if len(fields) == 2 else None
            reason = CLOSE_REASONS[code] if code is not None and 0 <= code < len(CLOSE_REASONS) else "closed"
            if first is not None:
                self._dirty &= ~(1 << first)
            if link is not None:
                link.modem_dropped(reason, True)
        elif line.startswith(b"+CIPEVENT:"):
            if b"NETWORK CLOSED UNEXPECTEDLY" in line:
                self._drop_all("network closed unexpectedly")
                self._dirty = 0
                self.net = NET_LOST
                self.ip = None
        elif line.startswith(b"+CIPOPEN:"):
            if link is not None and len(fields) == 2:
                link.result("open", to_int(fields[1]))
        elif line.startswith(b"+CIPSEND:"):
            if link is not None and len(fields) == 3:
                link.result("send", (to_int(fields[1]), to_int(fields[2])))
        elif line.startswith(b"+CIPCLOSE:"):
            if first is not None and len(fields) == 2:
                self._dirty &= ~(1 << first)
                if link is not None:
                    link.result("close", to_int(fields[1]))
        elif line.startswith(b"+NETOPEN:"):
            self._netopen_err = first
            self._event.set()
        elif line.startswith(b"+NETCLOSE:"):
            self._netclose_err = first
            self._event.set()
        elif line == b"RDY":  # a boot: mid-session it means the modem restarted
            self._drop_all("modem restarted")
            self._dirty = 0
            self.net = NET_DOWN
            self.ip = None
            self.booted = True
            self.sim = None  # +CPIN follows when the SIM is ready
        elif line.startswith(b"+CPIN:"):
            self.sim = text(fields[0]) if fields else None

    def data_call(self, dtr=None, owner="PPP"):
        """A DataCall (modem/ppp.py) on this channel: PPP instead of the modem's stack.
        dtr: an output pin wired to the modem's DTR, or None."""
        from .ppp import DataCall  # here: the AT transport never pays for its RAM

        self.call = DataCall(self.channel, ledger=self._ledger, dtr=dtr, owner=owner)
        return self.call

    def _on_dead(self, reason):
        if self.call is not None:
            self.call.carrier_lost("modem gone: %s" % reason)
        self._drop_all("modem gone: %s" % reason)
        self.net = NET_DOWN
        self.sim = None
        self._event.set()

