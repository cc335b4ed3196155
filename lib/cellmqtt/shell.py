"""REPL commands in the manner of RT-Thread's msh: type `free`, `list_fd` or
`netstat` as a bare word at the MicroPython REPL (the object's repr is the report),
or call it. boot.py installs repl.py's stand-ins, which load this module when first
used. A board in deep sleep runs nothing between windows: each report ends with the
line its last window recorded (record), and how long ago.
"""

import time

from . import port, unload
from .ledger import ledger
from .memwatch import watch
from .modem import attached as _attached

LAST_WINDOW = "last_window"  # the file of record()


def free_report():
    watch.observe_peak()
    port.collect()
    used = port.mem_alloc()
    peak = max(watch.verdict.peak, used)
    return "total memory: %d\nused memory : %d\nmaximum allocated memory: %d\nlargest free block: %d" % (
        port.mem_total(), used, peak, port.largest_free())


def list_fd_report(book=None):
    book = ledger if book is None else book
    lines = ["fd type    ref owner  detail", "-- ------  --- -----  ------"]
    for entry in book.entries():
        lines.append("%2d %-8s%3d %-6s %s" % (entry.fd, entry.kind, entry.ref, entry.owner, entry.detail))
    unload("cellmqtt.ledger_audit")  # entries() loaded it for this listing: it goes with the report
    return "\n".join(lines)


def netstat_report(driver=None):
    """The links as the host holds them beside the modem's own table (AT+CIPOPEN?, as
    last read: the REPL may have no event loop to ask it now). A link one side has and
    the other has not is marked LEAK."""
    driver = _attached[0] if driver is None else driver
    if driver is None:
        return "no modem attached"
    lines = ["Active links:"]
    from .modem.netstat import rows  # the driver's side of netstat, loaded by its first use

    for number, local, remote, state, modem, leak in rows(driver):
        line = "#%s %s <==> %s  state: %s  modem: %s" % (number, local, remote, state, modem)
        if leak:
            line += "  LEAK: only the %s has it" % ("modem" if state == "-" else "host")
        lines.append(line)
    if len(lines) == 1:
        lines.append("(none)")
    read_ms = getattr(driver, "modem_table_ms", None)  # netstat.read_tables sets it
    if read_ms is None:
        lines.append("modem table: not read yet (await netstat.refresh())")
    else:
        age_s = port.ticks_diff(port.ticks_ms(), read_ms) // 1000
        lines.append("modem table: read %d s ago (await netstat.refresh() to read it now)" % age_s)
    return "\n".join(lines)


def record(line):
    """Keep a window's line, and when, for the reports while the board is in deep sleep
    (app.py, once a window in that mode only: flash wears)."""
    try:
        with open(LAST_WINDOW, "w") as f:
            f.write("%d %s" % (time.time(), line))
    except OSError:  # a full flash: the reports say nothing was recorded, the board runs on
        pass


def recorded():
    """What the last window before deep sleep recorded, as the reports end; "" if none."""
    try:
        with open(LAST_WINDOW) as f:
            stamp, line = f.read().split(" ", 1)
        return "\ndeep sleep: nothing runs between windows; the last one, %d s ago:\n%s" % (
            time.time() - int(stamp), line)
    except (OSError, ValueError):
        return ""


class Command:
    """A report that prints itself when named at the REPL and when called."""

    def __init__(self, name, report):
        self.name = name
        self._report = report

    def __repr__(self):
        return self._report() + recorded()

    def __call__(self):
        print(repr(self))


class Netstat(Command):
    """`netstat` from the cached modem table; `await netstat.refresh()` asks the modem
    first (from async code, with the driver's event loop running)."""

    async def refresh(self):
        """Read the modem's table now; returns this command, whose repr is the report."""
        driver = _attached[0]
        if driver is not None:
            from .modem.netstat import read_tables

            await read_tables(driver)
        return self


free = Command("free", free_report)
list_fd = Command("list_fd", list_fd_report)
netstat = Netstat("netstat", netstat_report)
