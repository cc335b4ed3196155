"""Downlink commands: JSON objects on the command topic, checked against a small
schema before anything changes. Anything else is refused with a reason and changes
nothing; every command gets a reply on the status topic.

  {"cmd": "set_period", "period_s": 300}   sampling period, 1-86400 s
  {"cmd": "status"}                        reply with queue and memory figures
"""

import json

from ._const import const

MAX_COMMAND_BYTES = const(256)  # a command is a short object; anything bigger is refused unread
MAX_PENDING = const(4)  # commands held until the window handles them; more are dropped, counted

# name -> {field: (type, low, high)}
SCHEMA = {
    "set_period": {"period_s": (int, 1, 86400)},
    "status": {},
}


class CommandError(ValueError):
    pass


def parse(payload):
    """The command as a dict, or CommandError naming what is wrong."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandError("command larger than %d bytes" % MAX_COMMAND_BYTES)
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
    """A bounded holding place for commands that arrive during a window (the MQTT
    reader calls `put` and must not block)."""

    def __init__(self):
        self._items = []
        self.dropped = 0

    def put(self, topic, payload, qos, retain):
        if len(self._items) >= MAX_PENDING:
            self.dropped += 1
            return
        self._items.append(bytes(payload))

    def take(self):
        items = self._items
        self._items = []
        return items
