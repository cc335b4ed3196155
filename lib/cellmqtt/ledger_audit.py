"""The ledger's audit: what tests and list_fd ask of a Ledger (ledger.py), apart so
that a board gives its code heap only when someone at the REPL asks. A Ledger hands
these out as its own methods, loaded with the first one asked for: book.count(TASK) is
count(book, TASK)."""


def entries(book):
    """The entries, by number."""
    return [book._entries[fd] for fd in sorted(book._entries)]


def share(book, fd):
    """One more holder of the same resource (one the ledger holds): it stays until
    every holder released it."""
    book._entries[fd].ref += 1


def count(book, kind=None, owner=None):
    n = 0
    for entry in book._entries.values():
        if (kind is None or entry.kind == kind) and (owner is None or entry.owner == owner):
            n += 1
    return n


def mark_baseline(book):
    """Remember what is held now as the state every cycle must come back to."""
    book._baseline = tuple(book._entries.values())


def extra(book):
    """Entries held now that were not held at the baseline: the leaks."""
    baseline = book._baseline
    return [entry for entry in entries(book) if entry not in baseline]


def at_baseline(book):
    # nothing held beyond the baseline, and as many entries: the same ones
    return len(book._entries) == len(book._baseline) and not extra(book)
