"""REPL commands in the manner of RT-Thread's msh: type `free` or `list_fd` as a
bare word at the MicroPython REPL (the object's repr is the report), or call it.
boot.py installs them with `install(globals())`.
"""

from . import port
from .ledger import ledger
from .memwatch import watch


def free_report():
    watch.observe_peak()
    port.collect()
    used = port.mem_alloc()
    peak = max(watch.verdict.peak, used)
    return "total memory: %d\nused memory : %d\nmaximum allocated memory: %d" % (
        port.mem_total(), used, peak)


def list_fd_report(book=None):
    book = ledger if book is None else book
    lines = ["fd type    ref owner  detail", "-- ------  --- -----  ------"]
    for entry in book.entries():
        lines.append("%2d %-8s%3d %-6s %s" % (entry.fd, entry.kind, entry.ref, entry.owner, entry.detail))
    return "\n".join(lines)


class Command:
    """A report that prints itself when named at the REPL and when called."""

    def __init__(self, name, report):
        self.name = name
        self._report = report

    def __repr__(self):
        return self._report()

    def __call__(self):
        print(self._report())


free = Command("free", free_report)
list_fd = Command("list_fd", list_fd_report)
COMMANDS = (free, list_fd)


def install(namespace):
    """Put every command into a namespace (boot.py passes the REPL's globals())."""
    for command in COMMANDS:
        namespace[command.name] = command
