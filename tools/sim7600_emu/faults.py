"""Fault specifications: names, parameters and defaults, parsing, and the store of the
faults that wait for their moment (see the package docstring for what each one does)."""

# name -> parameters with their defaults; the default's type is the parameter's type.
# count=0 means "until CLEAR"; skip=n lets the first n matching commands through.
SPECS = {
    "silent": {"command": "", "count": 0, "skip": 0},
    "error": {"command": "", "count": 0, "skip": 0},
    "cme": {"command": "", "count": 0, "code": 100, "skip": 0},
    "brownout": {"command": "", "skip": 0},
    "truncate": {"count": 1, "command": "", "skip": 0},
    "short_send": {"count": 1},
    "open_fail": {"count": 1, "err": 1},
    "garbage": {"bytes": 16, "seed": -1, "command": "", "skip": 0},
    "remote_close": {"link": -1, "command": "", "skip": 0},
    "send_timeout": {"link": -1, "command": "", "skip": 0},
    "network_lost": {"command": "", "skip": 0},
    "reg_denied": {},
    "no_sim": {},
    "no_signal": {},
    "no_carrier": {"count": 1},
    "carrier_drop": {"ms": -1},
    "escape_ignored": {"count": 1},
}
# Faults that act on a command line as it arrives.
COMMAND_FAULTS = ("silent", "error", "cme", "brownout")
# Faults that happen at once when requested (brownout too, when it has no command), or,
# given command=, when that command arrives (before the modem acts on it).
ACTIONS = ("garbage", "remote_close", "send_timeout", "network_lost")
# Faults of the data call (ppp.py): the next dial, the next CONNECT (carrier_drop with
# ms >= 0; without ms it acts now), the next +++.
CALL_FAULTS = ("no_carrier", "carrier_drop", "escape_ignored")
# Faults on a command's answer; with command= the answer of that command.
ANSWER_FAULTS = ("truncate",)
# Conditions that hold until CLEAR.
CONDITIONS = ("reg_denied", "no_sim", "no_signal")
MAX_GARBAGE_BYTES = 65536  # a burst of line noise, not a flood


def normalize(name, params):
    """Validated parameters of fault `name` with defaults filled in; ValueError otherwise."""
    if name not in SPECS:
        raise ValueError("unknown fault %r (known: %s)" % (name, ", ".join(sorted(SPECS))))
    spec = SPECS[name]
    result = dict(spec)
    for key, value in params.items():
        if key not in spec:
            allowed = ", ".join(sorted(spec)) or "no parameters"
            raise ValueError("fault %s takes %s, not %r" % (name, allowed, key))
        if isinstance(spec[key], int):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise ValueError("fault %s: %s=%r is not a number" % (name, key, value)) from None
            if value < 0 and spec[key] >= 0:
                raise ValueError("fault %s: %s must not be negative" % (name, key))
        result[key] = value
    if name in ("remote_close", "send_timeout") and not 0 <= result["link"] <= 9:
        raise ValueError("fault %s needs link=0..9" % name)
    if name == "garbage" and not 0 < result["bytes"] <= MAX_GARBAGE_BYTES:
        raise ValueError("fault garbage needs bytes=1..%d" % MAX_GARBAGE_BYTES)
    return result


def parse_spec(text):
    """`name[:k=v,...]` (the CLI's --fault) -> (name, params). A comma followed by text
    that is not one of the fault's keys belongs to the previous value, so
    `error:command=AT+CIPOPEN=0,"TCP"` keeps its command whole."""
    name, _, rest = text.partition(":")
    name = name.strip()
    keys = SPECS.get(name, {})
    params = {}
    last = None
    for piece in rest.split(",") if rest else ():
        key, sep, value = piece.partition("=")
        if sep and key.strip() in keys:
            last = key.strip()
            params[last] = value
        elif last is not None:
            params[last] += "," + piece
        else:
            raise ValueError("fault %s: expected key=value, got %r" % (name, piece))
    return name, normalize(name, params)


def parse_words(words):
    """The control port's `FAULT <name> k=v ...` words (after FAULT) -> (name, params)."""
    if not words:
        raise ValueError("FAULT needs a name")
    params = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError("expected key=value, got %r" % word)
        params[key] = value
    return words[0], normalize(words[0], params)


class Faults:
    """Faults waiting for a command, an event or CLEAR, in the order they were set."""

    def __init__(self):
        self._waiting = []

    def clear(self):
        self._waiting = []

    def add(self, name, params):
        self._waiting.append((name, dict(params)))

    def has(self, name):
        return any(entry[0] == name for entry in self._waiting)

    def names(self):
        return [entry[0] for entry in self._waiting]

    def take(self, name):
        """The parameters of the first waiting fault `name` that waits for no command,
        used once; or None."""
        for entry in self._waiting:
            if entry[0] == name and not entry[1].get("command"):
                self._spend(entry)
                return entry[1]
        return None

    def match_command(self, line):
        """(name, params) of the first command fault whose prefix starts `line`, used once."""
        upper = line.upper()
        for entry in self._waiting:
            name, params = entry
            triggered = name in COMMAND_FAULTS or params.get("command")
            if triggered and upper.startswith(params["command"].upper()):
                if params["skip"]:
                    params["skip"] -= 1
                    continue
                self._spend(entry)
                return name, params
        return None

    def _spend(self, entry):
        params = entry[1]
        count = params.get("count", 1)
        if count == 1:
            self._waiting.remove(entry)
        elif count > 1:
            params["count"] = count - 1
