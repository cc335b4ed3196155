"""The REPL's netstat side of the driver, loaded on its first use: the modem's own tables
(AT+CIPOPEN?, AT+CCHOPEN?) and the rows that set them beside the links the host holds."""

from .. import port
from .at_parser import split_fields, text, to_int
from .link import CLOSING, OPENING


def _cip_line(line):
    # AT+CIPOPEN? lines are `+CIPOPEN: 1` or `+CIPOPEN: 0,"TCP",...`; a `+CIPOPEN: 3,0`
    # URC arriving meanwhile has two bare numbers and stays a URC.
    return line.startswith(b"+CIPOPEN:") and (b"," not in line or b'"' in line)


def _cch_line(line):
    # AT+CCHOPEN? lines carry a quoted host (empty when free); a `+CCHOPEN: 0,15` URC
    # meanwhile has two bare numbers and stays a URC
    return line.startswith(b"+CCHOPEN:") and b'"' in line


async def _table(channel, command, match, host):
    # {number: (host, port)} of the numbers the modem holds open (field `host` is the
    # host, the next its port); a table read waits the default, not an open's 120 s
    response = await channel.command(command, match=match, timeout_ms=channel.timeout("default"))
    table = {}
    for line in response.lines:
        fields = split_fields(line)
        number = to_int(fields[0])
        if number is not None and len(fields) > host + 1 and fields[host]:
            table[number] = (text(fields[host]), to_int(fields[host + 1]))
    return table


async def read_tables(driver):
    """Read the modem's tables into driver.modem_table, {number: (host, port)}, and the
    TLS service's, when it has started, with the time (driver.modem_table_ms: netstat
    gives a driver both, an AT window never holds them); returns the link table."""
    if driver.ip is None and driver.net == "open":  # net_open() does not ask: only netstat shows it
        lines = (await driver.channel.command("AT+IPADDR")).lines
        driver.ip = text(split_fields(lines[0])[0]) if lines else "?"
    table = await _table(driver.channel, "AT+CIPOPEN?", _cip_line, 2)
    tls = driver.tls
    if tls is not None:
        tls.modem_table = await _table(driver.channel, "AT+CCHOPEN?", _cch_line, 1) if tls.started else {}
    driver.modem_table = table
    driver.modem_table_ms = port.ticks_ms()
    return table


def _rows(slots, table, ip, prefix):
    rows = []
    for number in range(len(slots)):
        link = slots[number]
        remote = table.get(number) if table is not None else None
        if table is None:
            modem = "?"
        else:
            modem = "open" if remote is not None else "closed"
        if link is not None:
            state = link.state
            address = "%s:%d" % (link.host, link.port)
            settling = state == OPENING or state == CLOSING
            leak = table is not None and remote is None and not settling
        elif remote is not None:
            state = "-"
            address = "%s:%s" % (remote[0], remote[1])
            leak = True
        else:
            continue
        rows.append((number if prefix is None else "%s%d" % (prefix, number), ip, address, state, modem, leak))
    return rows


def rows(driver):
    """(number, local ip, remote, state, modem, leak) for each number either side holds
    (modem: "open", "closed" or "?" when never read), then the TLS sessions as "tls0"."""
    ip = driver.ip or "?"
    result = _rows(driver.slots, getattr(driver, "modem_table", None), ip, None)
    if driver.tls is not None:
        result.extend(_rows(driver.tls.slots, driver.tls.modem_table, ip, "tls"))
    return result
