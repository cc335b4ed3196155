"""Stateless SIM7600 commands: functions of an AtChannel, each one question to the
modem and its typed answer (docs/modem.md, "SIM and registration", "Network"). The
driver calls these and keeps what it needs of the answers."""

import asyncio

from .. import port
from ..errors import AtError, ConfigError, NoSignal, RegistrationDenied, SimError, Timeout
from .at_parser import split_fields, text, to_int

# +CME ERROR codes of AT+CPIN? (CMEE=1); with CMEE=2 the modem sends these texts
_CME_SIM = {10: "SIM not inserted", 11: "SIM PIN required", 12: "SIM PUK required",
            13: "SIM failure", 14: "SIM busy", 15: "SIM wrong"}
# Data needs packet-switched registration: EPS on LTE (first: LTE registers first),
# GPRS on 2G/3G
_REGISTRATION = ("+CEREG", "+CGREG")
_REPORTS = (b"+CEREG:", b"+CGREG:")
_SIM_SETTLING = ("SIM busy", "SIM failure")  # both seen for a moment early in boot (A76xx logs)


def _fields(response):
    return split_fields(response.lines[0]) if response.lines else []


async def power_up(channel):
    """Probe AT every "probe" ms until the modem answers (it ignores probes until
    RDY), within the "boot" bound; then echo off and numeric +CME errors."""
    bound = channel.timeout("boot")
    probe = channel.timeout("probe")
    started = port.ticks_ms()
    while True:
        try:
            await channel.command("AT", timeout_ms=probe, forget_late=True)
            break
        except Timeout:
            pass
        except AtError:
            await port.asleep_ms(probe)
        if port.ticks_diff(port.ticks_ms(), started) >= bound:
            raise Timeout("modem power-up (AT)", bound)
    await channel.command("ATE0")
    await channel.command("AT+CMEE=1")


async def sim_ready(channel, poll_ms):
    """AT+CPIN? until READY, which it returns; SimError for any other state. SIM busy,
    SIM failure and no answer (all seen early in boot) are retried within the "sim" bound."""
    bound = channel.timeout("sim")
    started = port.ticks_ms()
    while True:
        try:
            response = await channel.command("AT+CPIN?")
            break
        except AtError as error:
            if error.kind != "CME":
                raise
            state = _CME_SIM.get(error.code, error.code) if type(error.code) is int else error.code
            if state not in _SIM_SETTLING or port.ticks_diff(port.ticks_ms(), started) >= bound:
                raise SimError(state, error.code)
        except Timeout:
            if port.ticks_diff(port.ticks_ms(), started) >= bound:
                raise
        await port.asleep_ms(poll_ms)
    fields = _fields(response)
    state = text(fields[0]) if fields else "?"
    if state != "READY":
        raise SimError(state)
    return state


async def signal(channel):
    """(rssi, ber) from AT+CSQ; 99 means not known (99,99: no signal)."""
    fields = _fields(await channel.command("AT+CSQ"))
    if len(fields) != 2:
        return 99, 99
    rssi, ber = to_int(fields[0]), to_int(fields[1])
    return (99 if rssi is None else rssi), (99 if ber is None else ber)


async def wait_registered(channel, timeout_ms):
    """Turn the registration reports on (AT+CEREG=1, AT+CGREG=1), ask once (it may be
    done already), then wait for a report of 1 (home) or 5 (roaming); returns that
    stat. The queries are asked again every "requery" ms: a report can be lost, and a
    stat that does not change is never reported. Denied (3) with none registered
    raises RegistrationDenied; unknown values (11 on some firmware) count as not
    registered. At the bound ("register" unless timeout_ms): NoSignal if AT+CSQ says
    99, else Timeout."""
    bound = channel.timeout("register") if timeout_ms is None else timeout_ms
    requery = channel.timeout("requery")
    started = port.ticks_ms()
    # the last stat of each of _REGISTRATION as answered, then as reported: an answer
    # read after the command ended must not hide a report that came during it
    stats: list = [None, None, None, None]
    changed = asyncio.Event()

    def report(line, chunk):
        fields = split_fields(line)
        if len(fields) == 1:  # `+CEREG: <stat>`; an answer to a query has two fields
            stats[2 if line.startswith(b"+CEREG") else 3] = to_int(fields[0])
            changed.set()

    token = channel.subscribe(_REPORTS, report, "registration")
    try:
        for name in _REGISTRATION:
            try:
                await channel.command("AT%s=1" % name)
            except (AtError, Timeout):  # no reports from this one: the queries still ask
                pass
        asked = None
        while True:
            if asked is None or port.ticks_diff(port.ticks_ms(), asked) >= requery:
                asked = port.ticks_ms()
                for i in range(2):  # a round, LTE first, until one says 1 or 5
                    if 1 in stats or 5 in stats:
                        break
                    try:
                        fields = _fields(await channel.command("AT%s?" % _REGISTRATION[i], match=_answer))
                    except (AtError, Timeout):  # refused or unanswered: its stat stays
                        continue
                    stats[i] = to_int(fields[1]) if len(fields) >= 2 else None
            changed.clear()
            for stat in stats:
                if stat == 1 or stat == 5:
                    return stat
            if 3 in stats:
                raise RegistrationDenied("AT%s?" % _REGISTRATION[stats.index(3) % 2])
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
    rssi, _ = await signal(channel)
    if rssi == 99:
        raise NoSignal("no signal (AT+CSQ: 99) after %d ms" % bound)
    raise Timeout("network registration", bound)


def _answer(line):
    # a query's answer has a comma (`+CEREG: <n>,<stat>`): `+CEREG: <stat>` is a report
    return b"," in line and (line.startswith(b"+CEREG:") or line.startswith(b"+CGREG:"))


async def set_apn(channel, apn):
    """AT+CGDCONT=1,"IP","<apn>"; an APN that would break the command line is a
    ConfigError before anything is sent."""
    if '"' in apn or "\r" in apn or "\n" in apn:
        raise ConfigError("modem.apn", "no quotes or line breaks")
    await channel.command('AT+CGDCONT=1,"IP","%s"' % apn)


async def ip_address(channel):
    """The address the network gave (AT+IPADDR), once NETOPEN succeeded."""
    fields = _fields(await channel.command("AT+IPADDR"))
    return text(fields[0]) if fields else "?"


def _table_line(line):
    # AT+CIPOPEN? lines are `+CIPOPEN: 1` or `+CIPOPEN: 0,"TCP",...`; a `+CIPOPEN: 3,0`
    # URC arriving meanwhile has two bare numbers and stays a URC.
    return line.startswith(b"+CIPOPEN:") and (b"," not in line or b'"' in line)


async def link_table(channel):
    """The modem's own socket table (AT+CIPOPEN?): {number: (host, port)} of the
    links it holds open."""
    # a table read: the default wait, not +CIPOPEN's 120 s (netstat would hold the channel)
    response = await channel.command("AT+CIPOPEN?", match=_table_line, timeout_ms=channel.timeout("default"))
    table = {}
    for line in response.lines:
        fields = split_fields(line)
        number = to_int(fields[0])
        if number is not None and len(fields) >= 4:
            table[number] = (text(fields[2]), to_int(fields[3]))
    return table
