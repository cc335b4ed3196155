"""The network's time for the SIM7600 driver (Sim7600.network_time): loaded for one
read of the clock and unloaded after it, so a window's peak never holds this code."""

from .. import port
from ..errors import AtError
from .at_parser import text

_DAYS = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)  # before each month
NTP_SERVER = "pool.ntp.org"


def utc_seconds(command, line):
    """UTC epoch seconds of `+CCLK: "yy/MM/dd,hh:mm:ss±zz"` (local time, its zone in
    quarter hours) or `+CTZV: ±zz,"yy/MM/dd,hh:mm:ss",<dst>` (universal time). A garbled
    stamp, a time before 2024 or a zone past ±56 is AtError(command, "bad clock")."""
    parts = line.split(b'"')
    local = len(parts[0]) < 9  # `+CCLK: ` (its zone in the stamp), not `+CTZV: +32,`
    try:
        stamp = parts[1].decode()
        zone = stamp[17:] if local else parts[0][6:].strip().rstrip(b",").decode()
        year, month, day, hour, minute, second = [int(stamp[i:i + 2]) for i in range(0, 16, 3)]
        quarters = int(zone)
    except (IndexError, UnicodeError, ValueError):
        raise AtError(command, "bad clock", text(line))
    year += 2000
    leap = year % 4 == 0  # 2000-2099
    digits = (stamp[:17] + zone[1:]).replace("/", "").replace(",", "").replace(":", "")
    if (len(parts) != 3 or len(stamp) < 17 or stamp[2] + stamp[5] + stamp[8] + stamp[11] + stamp[14] != "//,::"
            or zone[:1] not in "+-" or not 1 < len(zone) < 4 or not digits.isdigit() or year < 2024
            or not 0 < month < 13 or not 0 < day <= _DAYS[month] - _DAYS[month - 1] + (month == 2 and leap)
            or hour > 23 or minute > 59 or second > 59 or not -56 <= quarters <= 56):
        raise AtError(command, "bad clock", text(line))
    days = (year - 1970) * 365 + (year - 1969) // 4 + _DAYS[month - 1] + (month > 2 and leap) + day - 1
    return days * 86400 + hour * 3600 + minute * 60 + second - (quarters * 900 if local else 0)


async def network_time(driver):
    """UTC epoch seconds (clock source "network" or "ntp"): the +CTZV that came
    with this boot's registration, else AT+CCLK? (the modem's clock, which the network
    sets with AT+CTZU=1); with source "ntp", or when that clock is bad, AT+CNTP first.
    AtError(command, "bad clock") for a garbled answer, a time before 2024 or a zone
    past ±56 quarters."""
    source = driver.clock
    report = driver.zone_report
    if report is not None and source == "network":
        return utc_seconds("+CTZV", report[0]) + port.ticks_diff(port.ticks_ms(), report[1]) // 1000
    channel = driver.channel
    ntp = source == "ntp"
    while True:
        if ntp:
            await channel.command('AT+CNTP="%s",0' % NTP_SERVER)
            code = (await channel.command("AT+CNTP", urc=True)).code()
            if code:
                raise AtError("AT+CNTP", "bad clock", code)
        response = await channel.command("AT+CCLK?")
        try:
            return utc_seconds("AT+CCLK?", response.lines[0] if response.lines else b"")
        except AtError:
            if ntp:
                raise
            ntp = True  # the network never set the clock: NTP, as time.source "network" says
