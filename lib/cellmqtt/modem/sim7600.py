"""SIM7600 driver: bring-up, attach, the modem's own TCP/IP stack and its ten links.

It runs on an AtChannel (which owns the UART). Commands whose result comes as a URC
(AT+NETOPEN, AT+CIPOPEN, ...) are exchanges of the channel, which take that line in
either order with the OK (docs/modem.md, Framing and Field behaviours); one URC
subscription takes what the stack reports unasked: +CIPRXGET: 1 (data waits),
+IPCLOSE, +CIPEVENT, the network's time (+CTZV) and the boot URCs RDY and +CPIN.
The bring-up's settings and its first registration queries go as one command line,
nothing the modem keeps while on is sent twice in a window, and a window's last
AT+NETCLOSE is left to AT+CPOF (docs/modem.md, A window's commands).

A typical duty cycle:
    driver = await Sim7600.open(uart_config)     # or Sim7600(channel); driver.start()
    await driver.power_up(); await driver.attach("apn")
    link = await driver.open_link("broker", 1883)  ...  await link.close()
    await driver.net_close(); await driver.power_off(); await driver.close()
"""

import asyncio

from .. import port
from .._const import const
from ..errors import ConfigError, StateError, Timeout
from ..errors_link import AtError, NoSignal, RegistrationDenied, SimError
from ..ledger import ledger as device_ledger
from . import attached
from .at import AtChannel
from .at_parser import split_fields, text, to_int
from .link import Link, error_name, net_error, number_for

_MAX_LINKS = const(10)  # the modem's link numbers 0-9
_POLL_MS = const(1000)  # SIM-busy poll interval: a few queries per bound

NET_DOWN = "down"
NET_OPEN = "open"
NET_LOST = "lost"  # +CIPEVENT: NETWORK CLOSED UNEXPECTEDLY; net_open() recovers
NET_CLOSING = "closing"  # closed here; AT+NETCLOSE still owed (net_close())

CLOSE_REASONS = "closed by local|closed by remote|send timeout"  # +IPCLOSE <reason> by code, joined
# what the stack reports unasked, each handled in _on_urc by its index here
_URCS = (b"+CIPRXGET:", b"+IPCLOSE:", b"+CIPEVENT:", b"RDY", b"+CPIN:", b"+CTZV:")
_DATA = const(0)
_IPCLOSE = const(1)
_EVENT = const(2)
_RDY = const(3)
_CPIN = const(4)
# Data needs packet-switched registration: EPS on LTE (first: LTE registers first, and
# only it reports by URC), GPRS on 2G/3G (found by the queries)
_QUERIES = ("AT+CEREG?", "AT+CGREG?")
_DAYS = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)  # before each month
_REPORTS = (b"+CEREG:", b"+CGREG:")


def utc_seconds(command, line):
    """UTC epoch seconds of `+CCLK: "yy/MM/dd,hh:mm:ss±zz"` (local time, its zone in
    quarter hours) or `+CTZV: ±zz,"yy/MM/dd,hh:mm:ss",<dst>` (universal time). A garbled
    stamp, a time before 2024 or a zone past ±56 is AtError(command, "bad clock")."""
    try:
        parts = line.decode().split('"')
        local = len(parts[0]) < 9  # `+CCLK: ` (its zone in the stamp), not `+CTZV: +32,`
        stamp = parts[1]
        zone = stamp[17:] if local else parts[0][6:].strip().rstrip(",")
        year, month, day, hour, minute, second = [int(stamp[i:i + 2]) for i in range(0, 16, 3)]
        quarters = int(zone)
        year += 2000
        leap = year % 4 == 0  # 2000-2099
        digits = (stamp[:17] + zone[1:]).replace("/", "").replace(",", "").replace(":", "")
        if (len(parts) != 3 or len(stamp) < 17 or stamp[2] + stamp[5] + stamp[8] + stamp[11] + stamp[14] != "//,::"
                or zone[:1] not in "+-" or not 1 < len(zone) < 4 or not digits.isdigit() or year < 2024
                or not 0 < month < 13 or not 0 < day <= _DAYS[month] - _DAYS[month - 1] + (month == 2 and leap)
                or hour > 23 or minute > 59 or second > 59 or not -56 <= quarters <= 56):
            raise ValueError  # as a garbled stamp
    except (IndexError, UnicodeError, ValueError):
        raise AtError(command, "bad clock", text(line))
    days = (year - 1970) * 365 + (year - 1969) // 4 + _DAYS[month - 1] + (month > 2 and leap) + day - 1
    return days * 86400 + hour * 3600 + minute * 60 + second - (quarters * 900 if local else 0)


def _fields(response):
    return split_fields(response.lines[0]) if response.lines else []


def _answer(line):
    # a query's answer has a comma (`+CEREG: <n>,<stat>`): `+CEREG: <stat>` is a report
    return b"," in line and line[:7] in _REPORTS


def apn_setting(apn):
    """+CGDCONT=1,"IP","<apn>"; an APN that would break the command line is a
    ConfigError before anything is sent."""
    if '"' in apn or "\r" in apn or "\n" in apn:
        raise ConfigError("modem.apn", "no quotes or line breaks")
    return '+CGDCONT=1,"IP","%s"' % apn


class Sim7600:
    zone_auto = False  # AT+CTZU=1 sent since the MCU booted (the modem keeps it: docs/modem.md)

    def __init__(self, channel, ledger=None, owns_channel=False, poll_ms=_POLL_MS, clock="network"):
        self.channel = channel
        self.poll_ms = poll_ms
        self.clock = clock  # the time source: "network" (+CTZV or AT+CCLK?), "ntp" or "off"
        self.zone_report = None  # (the +CTZV line, ticks_ms) of this boot
        self.ledger = device_ledger if ledger is None else ledger
        self.owns_channel = owns_channel  # close() closes the channel too
        self.slots: list = [None] * _MAX_LINKS  # the holder of Links (link.Link)
        self.dirty = 0
        self._sub = None
        self.net = NET_DOWN
        self.ip = None
        self.booted = False  # RDY seen
        self.sim = None  # the last +CPIN state since the modem booted
        self.call = None  # the DataCall of the PPP transport (transport_ppp.py), told when the modem is gone
        self.tls = None  # the SSL service (tls.py), made by the first open_tls_link()

    @classmethod
    async def open(cls, uart_config, timeouts=None, ledger=None, clock="network"):
        """Open the UART through the port layer and start a driver that owns it."""
        channel = stream = await port.open_uart(uart_config)  # what a failure closes until the channel is made
        try:
            channel = AtChannel(stream, timeouts=timeouts, ledger=ledger, detail=uart_config.get("name", "UART"))
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
        self._sub = self.channel.subscribe(_URCS, self._on_urc, "URC sim7600 stack")
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
            if self.owns_channel:
                await self.channel.close()

    # bring-up

    async def power_up(self):
        """Nothing once the modem said RDY (it takes commands from then on); else, after
        "probe" ms for an RDY on its way (STATUS may rise with it), probe with AT every
        "probe" ms until it answers (it ignores probes until RDY, and a modem left on by
        an MCU reset says nothing), within the "boot" bound. Echo goes off with
        wait_registered()'s settings."""
        channel = self.channel
        bound = channel.timeout("boot")
        probe = channel.timeout("probe")
        started = port.ticks_ms()
        while not self.booted:
            if port.ticks_diff(port.ticks_ms(), started) < probe:
                await port.asleep_ms(10)
                continue
            try:
                await channel.command("AT", timeout_ms=probe)
                return
            except Timeout:
                pass
            except AtError:
                await port.asleep_ms(probe)
            if port.ticks_diff(port.ticks_ms(), started) >= bound:
                raise Timeout("modem power-up (AT)", bound)

    async def check_sim(self):
        """AT+CPIN? until READY; SimError for any other state. SIM busy, SIM failure
        and no answer (all seen early in boot) are retried within the "sim" bound."""
        self.sim = None
        channel = self.channel
        bound = channel.timeout("sim")
        started = port.ticks_ms()
        while True:
            try:
                response = await channel.command("AT+CPIN?")
                break
            except AtError as error:
                if error.kind != "CME":
                    raise
                from .code_names import CME_SIM  # loaded by the first error

                names = CME_SIM.split("|")
                state = error.code
                if type(state) is int and 10 <= state <= 15:
                    state = names[state - 10]
                if state not in names[3:5] or port.ticks_diff(port.ticks_ms(), started) >= bound:  # failure, busy
                    raise SimError(state, error.code)
            except Timeout:
                if port.ticks_diff(port.ticks_ms(), started) >= bound:
                    raise
            await port.asleep_ms(self.poll_ms)
        fields = _fields(response)
        state = text(fields[0]) if fields else "?"
        if state != "READY":
            raise SimError(state)
        self.sim = state

    async def signal(self):
        """(rssi, ber) from AT+CSQ; 99 means not known (99,99: no signal)."""
        fields = _fields(await self.channel.command("AT+CSQ"))
        if len(fields) != 2:
            return 99, 99
        rssi, ber = to_int(fields[0]), to_int(fields[1])
        return (99 if rssi is None else rssi), (99 if ber is None else ber)

    async def wait_registered(self, timeout_ms=None, settings=()):
        """One command line first: echo off (ATE0), the network's time (AT+CTZU=1, once per
        MCU boot, before registration so that it brings +CTZV), the LTE registration
        reports on (AT+CEREG=1), `settings` (commands with no information answer) and the
        first round of queries (it may be registered already). Then wait for a report of
        1 (home) or 5 (roaming); returns that stat. The queries are asked again every "requery" ms: a
        report can be lost, and a stat that does not change is never reported. Denied (3)
        with none registered raises RegistrationDenied; unknown values (11 on some
        firmware) count as not registered. At the bound ("register" unless timeout_ms):
        NoSignal if AT+CSQ says 99, else Timeout."""
        channel = self.channel
        bound = channel.timeout("register") if timeout_ms is None else timeout_ms
        requery = channel.timeout("requery")
        started = port.ticks_ms()
        # the last stat of each of _QUERIES as answered, then as reported: an answer
        # read after the command ended must not hide a report that came during it
        stats: list = [None, None, None, None]
        changed = asyncio.Event()

        def report(line, chunk):
            fields = split_fields(line)
            if len(fields) == 1:  # `+CEREG: <stat>`; an answer to a query has two fields
                stats[2 + _REPORTS.index(line[:7])] = to_int(fields[0])
                changed.set()

        token = channel.subscribe(_REPORTS, report, "URC registration")
        try:
            # V.250 concatenation (docs/modem.md, A window's commands): one final result
            # for the line; an error stops it where it happens and does not say where, so
            # then the settings go one by one, the one that fails raising its own AtError
            # unless the window does without it (echo, time, reports: the queries still ask)
            zone = ["+CTZU=1"] if self.clock == "network" and not Sim7600.zone_auto else []
            extended = zone + ["+CEREG=1"] + list(settings)
            asked = None  # the first round is the line's, or, when it failed, asked next
            try:
                response = await channel.command("ATE0" + ";".join(extended) + ";+CEREG?;+CGREG?", match=_answer)
                for line in response.lines:
                    stats[_REPORTS.index(line[:7])] = to_int(split_fields(line)[1])
                if zone:
                    Sim7600.zone_auto = True  # else on the next window's line again
                asked = port.ticks_ms()
            except (AtError, Timeout):
                for command in ["E0"] + extended:
                    try:
                        await channel.command("AT" + command)
                    except (AtError, Timeout):
                        if command in settings:
                            raise
            while True:
                if asked is None or port.ticks_diff(port.ticks_ms(), asked) >= requery:
                    asked = port.ticks_ms()
                    for i in range(2):  # a round, LTE first, until one says 1 or 5
                        if 1 in stats or 5 in stats:
                            break
                        try:
                            fields = _fields(await channel.command(_QUERIES[i], match=_answer))
                        except (AtError, Timeout):  # refused or unanswered: its stat stays
                            continue
                        stats[i] = to_int(fields[1]) if len(fields) >= 2 else None
                changed.clear()
                for stat in stats:
                    if stat == 1 or stat == 5:
                        return stat
                if 3 in stats:
                    raise RegistrationDenied(_QUERIES[stats.index(3) % 2])
                left = bound - port.ticks_diff(port.ticks_ms(), started)
                if left <= 0:
                    break
                left = min(left, requery - port.ticks_diff(port.ticks_ms(), asked))
                if left > 0:
                    try:
                        await asyncio.wait_for(changed.wait(), left / 1000)
                    except asyncio.TimeoutError:
                        pass
        finally:
            channel.unsubscribe(token)
        rssi, _ = await self.signal()
        if rssi == 99:
            raise NoSignal("no signal (AT+CSQ: 99) after %d ms" % bound)
        raise Timeout("network registration", bound)

    async def attach(self, apn):
        """SIM, then registration with the APN and manual receive mode on its settings
        line, then NETOPEN: ready for links. The SIM is not asked when the modem
        reported +CPIN: READY since it booted."""
        if self.sim != "READY":
            await self.check_sim()
        await self.wait_registered(settings=(apn_setting(apn), "+CIPRXGET=1"))
        await self.net_open()

    # the network (PDP context of the modem's stack)

    async def net_open(self):
        """AT+NETOPEN and its +NETOPEN URC; an already open network is closed and
        opened again so that no link of an earlier session survives. The IP is read
        by netstat only."""
        if self.net != NET_DOWN:
            await self._net_close()
        channel = self.channel
        try:
            response = await channel.command("AT+NETOPEN", urc=True)
        except AtError as error:
            if error.kind != "IP" or "already opened" not in error.code:
                raise
            await self._net_close()  # a session before ours left it open
            response = await channel.command("AT+NETOPEN", urc=True)
        code = response.code()
        if code:
            raise net_error("NETOPEN", code)
        self.net = NET_OPEN

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
        await self.net_close()
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
        """(UTC epoch seconds, the ticks_ms they held at), or None when the clock source is
        "off": the +CTZV that came with this boot's registration and when it came, else
        AT+CCLK? (the modem's clock, which the network sets with AT+CTZU=1) and now; with
        source "ntp", or when that clock is bad, AT+CNTP first. AtError(command, "bad
        clock") for a garbled answer, a time before 2024 or a zone past ±56 quarters."""
        source = self.clock
        if source == "off":
            return None
        report = self.zone_report
        if report is not None and source == "network":
            return utc_seconds("+CTZV", report[0]), report[1]
        channel = self.channel
        ntp = source == "ntp"
        while True:
            if ntp:
                await channel.command('AT+CNTP="pool.ntp.org",0')
                code = (await channel.command("AT+CNTP", urc=True)).code()
                if code:
                    raise AtError("AT+CNTP", "bad clock", code)
            response = await channel.command("AT+CCLK?")
            try:
                return utc_seconds("AT+CCLK?", response.lines[0] if response.lines else b""), port.ticks_ms()
            except AtError:
                if ntp:
                    raise
                ntp = True  # the network never set the clock: NTP, as time.source "network" says

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

    # URCs

    def _on_urc(self, line, chunk):
        if chunk is not None:
            return  # push-mode data: the driver uses manual receive (AT+CIPRXGET=1)
        kind = 0  # the channel hands over only lines that start with one of _URCS
        while not line.startswith(_URCS[kind]):
            kind += 1
        fields = split_fields(line)
        first = to_int(fields[0]) if fields else None
        if kind == _DATA:  # by name and first field: `+CIPRXGET:1,0` is seen too
            first = to_int(fields[1]) if first == 1 and len(fields) == 2 else None
        link = self.slots[first] if first is not None and 0 <= first < _MAX_LINKS else None
        if kind == _DATA:
            if link is not None:
                link.data_waiting()
        elif kind == _IPCLOSE:
            if first is not None:
                self.dirty &= ~(1 << first)
            if link is not None:
                code = to_int(fields[1]) if len(fields) == 2 else None
                link.modem_dropped(error_name(CLOSE_REASONS, code, "closed"), True)
        elif kind == _EVENT:
            if b"NETWORK CLOSED UNEXPECTEDLY" in line:
                self._drop_all("network closed unexpectedly")
                self.net = NET_LOST
        elif kind == _RDY:
            if len(line) == 3:  # a boot: mid-session it means the modem restarted
                self._drop_all("modem restarted")
                self.net = NET_DOWN
                self.booted = True
                self.sim = None  # +CPIN follows when the SIM is ready
                self.zone_report = None
        elif kind == _CPIN:
            self.sim = text(fields[0]) if fields else None
        else:  # +CTZV
            self.zone_report = (line, port.ticks_ms())

    def _on_dead(self, reason):
        reason = "modem gone: %s" % reason
        if self.call is not None:
            self.call.carrier_lost(reason)
        self._drop_all(reason)
        self.net = NET_DOWN
        self.sim = None
