"""The resource ledger: every acquired resource is recorded with its kind, an owner
tag and a short detail, and removed when released. `list_fd` prints it; tests
compare it with a baseline after every cycle, so a leak names its owner at once
(the listing, the baseline and the counts load apart: ledger_audit.py).

Numbers ("fd") are the lowest free ones, as POSIX hands out descriptors, so a
steady duty cycle reuses the same numbers and the table never grows.
"""

from ._const import const
from . import errors  # errors.X, one global for two: a module's table of 17 takes 23 slots at the 18th

# kinds
UART = "uart"
LINK = "link"
TASK = "task"
INFLIGHT = "inflight"
SUBSCRIPTION = "sub"
HANDLER = "handler"
FILE = "file"
SOCKET = "socket"
PPP = "ppp"  # a data call and the PPP stack over it

_DEFAULT_CAPACITY = const(64)  # far above what one duty cycle holds; a runaway hits it fast
_TABLE_ENTRIES = const(16)  # the table's size from the start: twice what a window held at once


class LedgerError(errors.CellMqttError):
    """A release of something the ledger does not hold."""


class Entry:
    def __init__(self, fd, kind, owner, detail):
        self.fd = fd
        self.kind = kind
        self.owner = owner
        self.detail = detail
        self.ref = 1

    def __repr__(self):
        return "<%d %s %s %s>" % (self.fd, self.kind, self.owner, self.detail)


class Ledger:
    def __init__(self, capacity=_DEFAULT_CAPACITY):
        self.capacity = capacity
        # A dict never shrinks: one that a window holding more at once than any before
        # grew would step the heap up then (timing decides how many PUBACKs are out);
        # sized now, by adding entries and deleting them, it keeps its table.
        entries: dict = {}
        self._entries = entries
        for fd in range(_TABLE_ENTRIES):
            entries[fd] = None
        for fd in range(_TABLE_ENTRIES):
            del entries[fd]
        self._baseline: tuple = ()

    def acquire(self, kind, owner, detail=""):
        """Record a resource; returns its number, to give back to release()."""
        entries = self._entries
        if len(entries) >= self.capacity:
            raise errors.LimitExceeded("ledger entries", self.capacity)
        fd = 0
        while fd in entries:
            fd += 1
        entries[fd] = Entry(fd, kind, owner, detail)
        return fd

    def release(self, fd):
        entry = self._entries.get(fd)
        if entry is None:
            raise LedgerError("release of fd %d: not in the ledger" % fd)
        entry.ref -= 1
        if entry.ref == 0:
            del self._entries[fd]

    def __len__(self):
        return len(self._entries)

    def __getattr__(self, name):
        # entries, share, count, mark_baseline, extra and at_baseline are ledger_audit.py's,
        # loaded with the first asked for: tests and list_fd ask, a duty cycle never does
        if name[0] == "_":
            raise AttributeError(name)
        from . import ledger_audit

        audit = getattr(ledger_audit, name)
        return lambda *args, **options: audit(self, *args, **options)


ledger = Ledger()  # the device's ledger; code takes it by default, tests may pass their own
