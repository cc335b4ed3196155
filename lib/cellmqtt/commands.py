"""Downlink commands: JSON objects on the command topic, checked against a small
schema before anything changes. Anything else is refused with a reason and changes
nothing; every command gets a reply on the status topic, and only then is it
acknowledged to the broker, so none is lost in silence. The duty cycle loads this
module with the first command (downlink.py's Inbox holds them): a board that gets
none never gives it any heap.

  {"cmd": "set_period", "period_s": 300}   sampling period, 1-86400 s
  {"cmd": "status"}                        reply with queue and memory figures
"""

import json
import os

from . import port
from .app import SETTINGS_FILE
from .downlink import MAX_COMMAND_BYTES
from .errors import CellMqttError

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


async def answer(cycle, client, outcome):
    """Reply to each command in the cycle's inbox, then acknowledge it: one not answered
    stays at the broker. Past half the window the rest wait for the next one."""
    budget_ms = cycle.config["upload"]["window_s"] * 500
    while port.ticks_diff(port.ticks_ms(), outcome.started_ms) < budget_ms:
        items = cycle.inbox.items  # the oldest first; more may join while answering
        if not items:
            return
        payload, token = items.pop(0)
        outcome.commands += 1
        try:
            command = parse(payload)
        except CommandError as error:
            reply = {"ok": False, "error": str(error)}
        else:
            name = command["cmd"]
            if name == "set_period" and command["period_s"] != cycle.period_s:
                cycle.period_s = command["period_s"]
                _save_settings({"period_s": cycle.period_s})  # only a change is written: flash wears
            reply = {"ok": True, "cmd": name, "period_s": cycle.period_s, "queue": cycle.store.depth,
                     "mem_used": cycle.watch.verdict.used}
        await client.publish(cycle.config["topics"]["status"], json.dumps(reply), qos=1)
        await client.ack(token)


def _save_settings(settings):
    temp = SETTINGS_FILE + ".tmp"
    with open(temp, "w") as f:
        f.write(json.dumps(settings))
    os.rename(temp, SETTINGS_FILE)
