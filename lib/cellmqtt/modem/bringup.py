"""The SIM7600 driver's bring-up (Sim7600.power_up, check_sim, signal, wait_registered,
attach, net_open) and the network's error texts (net_error): run a few times a window
before its first link, so the driver loads this module for each call and unloads it
after (cellmqtt.unload): neither the heap after boot nor a window's peak holds it. What
runs after the links (net_close, power_off) stays in the driver: loading it then, with
the MQTT client still alive, raised the peak."""

import asyncio

from .. import port
from ..errors import AtError, NetError, NoSignal, RegistrationDenied, SimError, Timeout
from .at_parser import split_fields, text, to_int
from .sim7600 import NET_DOWN, NET_OPEN, Sim7600, set_apn

# the network errors of AT+NETOPEN and AT+CIPOPEN (net_error; Link._open_error loads them)
NET_ERRORS = (
    "ok", "network failure", "network not opened", "wrong parameter", "not supported",
    "create socket failed", "bind failed", "server already listening", "busy",
    "sockets opened", "timeout", "DNS parse failed", "unknown")
# +CME ERROR codes 10-15 of AT+CPIN? (CMEE=1); with CMEE=2 the modem sends these texts
_CME_SIM = ("SIM not inserted", "SIM PIN required", "SIM PUK required", "SIM failure", "SIM busy", "SIM wrong")
_SIM_SETTLING = ("SIM busy", "SIM failure")  # both seen for a moment early in boot (A76xx logs)
# Data needs packet-switched registration: EPS on LTE (first: LTE registers first, and
# only it reports by URC), GPRS on 2G/3G (found by the requery)
_REGISTRATION = ("+CEREG", "+CGREG")
_REPORTS = (b"+CEREG:", b"+CGREG:")


def _fields(response):
    return split_fields(response.lines[0]) if response.lines else []


def _answer(line):
    # a query's answer has a comma (`+CEREG: <n>,<stat>`): `+CEREG: <stat>` is a report
    return b"," in line and (line.startswith(b"+CEREG:") or line.startswith(b"+CGREG:"))


def net_error(operation, code):
    name = NET_ERRORS[code] if 0 <= code < len(NET_ERRORS) else "unknown"
    return NetError(operation, code, name)


async def power_up(driver):
    """Probe with ATE0 (echo off) every "probe" ms until the modem answers (it ignores
    probes until RDY), within the "boot" bound. Numeric +CME errors are the modem's
    default (AT+CMEE=1); texts are understood too. With the network's time, AT+CTZU=1
    once per MCU boot, before registration so that it brings +CTZV."""
    channel = driver.channel
    bound = channel.timeout("boot")
    probe = channel.timeout("probe")
    started = port.ticks_ms()
    while True:
        try:
            await channel.command("ATE0", timeout_ms=probe)
            break
        except Timeout:
            pass
        except AtError:
            await port.asleep_ms(probe)
        if port.ticks_diff(port.ticks_ms(), started) >= bound:
            raise Timeout("modem power-up (ATE0)", bound)
    if driver.clock == "network" and not Sim7600.zone_auto:
        try:
            await channel.command("AT+CTZU=1")
            Sim7600.zone_auto = True
        except (AtError, Timeout):  # no time from the network then; the window goes on
            pass


async def check_sim(driver):
    """AT+CPIN? until READY; SimError for any other state. SIM busy, SIM failure
    and no answer (all seen early in boot) are retried within the "sim" bound."""
    driver.sim = None
    channel = driver.channel
    bound = channel.timeout("sim")
    started = port.ticks_ms()
    while True:
        try:
            response = await channel.command("AT+CPIN?")
            break
        except AtError as error:
            if error.kind != "CME":
                raise
            state = error.code
            if type(state) is int and 10 <= state <= 15:
                state = _CME_SIM[state - 10]
            if state not in _SIM_SETTLING or port.ticks_diff(port.ticks_ms(), started) >= bound:
                raise SimError(state, error.code)
        except Timeout:
            if port.ticks_diff(port.ticks_ms(), started) >= bound:
                raise
        await port.asleep_ms(driver.poll_ms)
    fields = _fields(response)
    state = text(fields[0]) if fields else "?"
    if state != "READY":
        raise SimError(state)
    driver.sim = state


async def signal(driver):
    """(rssi, ber) from AT+CSQ; 99 means not known (99,99: no signal)."""
    fields = _fields(await driver.channel.command("AT+CSQ"))
    if len(fields) != 2:
        return 99, 99
    rssi, ber = to_int(fields[0]), to_int(fields[1])
    return (99 if rssi is None else rssi), (99 if ber is None else ber)


async def wait_registered(driver, timeout_ms=None):
    """Turn the LTE registration reports on (AT+CEREG=1), ask once (it may be done
    already), then wait for a report of 1 (home) or 5 (roaming); returns that
    stat. The queries are asked again every "requery" ms: a report can be lost, and a
    stat that does not change is never reported. Denied (3) with none registered
    raises RegistrationDenied; unknown values (11 on some firmware) count as not
    registered. At the bound ("register" unless timeout_ms): NoSignal if AT+CSQ says
    99, else Timeout."""
    channel = driver.channel
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
        try:
            await channel.command("AT+CEREG=1")
        except (AtError, Timeout):  # no reports: the queries still ask
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
    rssi, _ = await signal(driver)
    if rssi == 99:
        raise NoSignal("no signal (AT+CSQ: 99) after %d ms" % bound)
    raise Timeout("network registration", bound)


async def attach(driver, apn):
    """SIM, registration, APN, manual receive mode, NETOPEN: ready for links. The
    SIM is not asked when the modem reported +CPIN: READY since it booted."""
    if driver.sim != "READY":
        await check_sim(driver)
    await wait_registered(driver)
    await set_apn(driver.channel, apn)
    await driver.channel.command("AT+CIPRXGET=1")
    await net_open(driver)


# the network (PDP context of the modem's stack)


async def net_open(driver):
    """AT+NETOPEN and its +NETOPEN URC; an already open network is closed and
    opened again so that no link of an earlier session survives. The IP is read
    by netstat only."""
    if driver.net != NET_DOWN:
        await driver._net_close()
    channel = driver.channel
    try:
        response = await channel.command("AT+NETOPEN", urc=True)
    except AtError as error:
        if error.kind != "IP" or "already opened" not in error.code:
            raise
        await driver._net_close()  # a session before ours left it open
        response = await channel.command("AT+NETOPEN", urc=True)
    code = to_int(split_fields(response.result)[0])
    if code:
        raise net_error("NETOPEN", code)
    driver.net = NET_OPEN
