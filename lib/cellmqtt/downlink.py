"""Downlink commands: JSON objects on the command topic, checked against a small
schema before anything changes. Anything else is refused with a reason and changes
nothing; every command gets a reply on the status topic, and only then is it
acknowledged to the broker, so none is lost in silence.

  {"cmd": "set_period", "period_s": 300}   sampling period, 1-86400 s
  {"cmd": "status"}                        reply with queue and memory figures
"""

import json

from ._const import const
from .errors import CellMqttError

MAX_COMMAND_BYTES = const(256)  # a command is a short object; anything bigger is refused unread
DEFAULT_PER_WINDOW = const(20)  # commands answered in one window (config downlink.max_per_window)
# counters wrap at 2**30 without an int past it: on a 32-bit port that is a heap object
_WRAP = const(0x3FFFFFFF)

# name -> {field: (type, low, high)}
SCHEMA = {
    "set_period": {"period_s": (int, 1, 86400)},
    "status": {},
}


class CommandError(CellMqttError):
    """A downlink command refused: the message says why (the reply on the status topic)."""


def parse(payload):
    """The command as a dict, or CommandError naming what is wrong. An int stands for
    a command too large to be kept: its size."""
    size = payload if type(payload) is int else len(payload)
    if size > MAX_COMMAND_BYTES:
        raise CommandError("command of %d bytes is larger than the limit of %d bytes" % (size, MAX_COMMAND_BYTES))
    try:
        command = json.loads(payload)
    except (ValueError, UnicodeError):
        raise CommandError("not JSON")
    if type(command) is not dict:
        raise CommandError("not a JSON object")
    name = command.get("cmd")
    fields = SCHEMA.get(name) if type(name) is str else None
    if fields is None:
        raise CommandError("unknown cmd; known: " + ", ".join(sorted(SCHEMA)))
    for key in command:
        if key != "cmd" and key not in fields:
            raise CommandError("%s takes no field %s" % (name, key))
    for key, rule in fields.items():
        kind, low, high = rule
        value = command.get(key)
        if type(value) is not kind or not low <= value <= high:
            raise CommandError("%s.%s must be an integer from %d to %d" % (name, key, low, high))
    return command


class Inbox:
    """The commands of one window, in the order they came, each with the token that
    acknowledges it (MqttClient manual_ack). The MQTT reader calls put() and
    put_oversized() and must not block. At most `limit` are taken a window; the rest
    are let go unacknowledged, so the broker keeps them for a later window: its queue
    is the buffer, not the board's heap."""

    def __init__(self, limit=DEFAULT_PER_WINDOW):
        self.limit = limit
        self._items = []
        self._taken = 0
        self.deferred = 0  # let go for a later window (wraps at 2**30, as does oversized)
        self.oversized = 0  # too large to be read: answered with their size

    def open(self):
        """A new window: nothing held, `limit` to take."""
        self._items = []
        self._taken = 0

    def put(self, topic, payload, qos, retain, token=None):
        if self._admit():
            kept = bytes(payload) if len(payload) <= MAX_COMMAND_BYTES else len(payload)
            self._items.append((kept, token))

    def put_oversized(self, topic, size, qos, token=None):
        self.oversized = self.oversized + 1 if self.oversized < _WRAP else 0
        if self._admit():
            self._items.append((size, token))

    def next(self):
        """The oldest command not answered yet, (payload or size, token), or None. The
        broker sends more as earlier ones are acknowledged: they join while answering."""
        items = self._items
        return items.pop(0) if items else None

    def close(self):
        """The window answers no more: what is held and whatever comes later is let go."""
        self.defer(len(self._items))
        self._items = []
        self._taken = self.limit

    def defer(self, count):
        left = self.deferred - _WRAP - 1 + count  # left to right: each step a small int
        self.deferred = left if left >= 0 else left + _WRAP + 1

    def _admit(self):
        if self._taken >= self.limit:
            self.defer(1)
            return False
        self._taken += 1
        return True
