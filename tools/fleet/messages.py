"""What the boards send, as the collector takes it: the topics of config.json's
templates, and the data, health and status messages (lib/cellmqtt/app.py), checked
and turned into rows; anything else is a Reject with its reason."""

import json
import re

from cellmqtt import config as checker

KINDS = ("data", "health", "status")
_PLACEHOLDER = "{device}"
_SENTINEL = "fleet.device.placeholder"  # a valid device id that no template contains
_ID_RULE = checker.SCHEMA["device_id"][1]  # ("text", check, description): the board's own rule
_HEALTH_REQUIRED = ("window", "mem_used", "mem_peak")
# health key -> column (db.HEALTH_COLUMNS), the optional figures
_HEALTH_OPTIONAL = {"mem_largest_free": "mem_largest_free", "modem_on_ms": "modem_on_ms",
                    "modem_total_on_ms": "modem_total_on_ms", "failures": "failures", "queue": "queue_depth",
                    "dropped": "dropped"}


class Reject(Exception):
    """A message that cannot be stored; str() is the reason kept in the rejects table."""


def templates(raw):
    """The data, health and status topic templates of a config.json's contents,
    checked as the board checks them."""
    raw = dict(raw, device_id=_SENTINEL)
    topics = checker.validate(raw)["topics"]
    return {kind: topics[kind].replace(_SENTINEL, _PLACEHOLDER) for kind in KINDS}


class Routes:
    """Topic filters to subscribe to, and which kind (and device) a topic is."""

    def __init__(self, topics):
        self._routes = []
        self.filters = []
        for kind in KINDS:
            template = topics[kind]
            pattern = re.escape(template).replace(re.escape(_PLACEHOLDER), "([^/]+)")
            self._routes.append((kind, re.compile(pattern)))
            topic_filter = "/".join("+" if _PLACEHOLDER in level else level for level in template.split("/"))
            if topic_filter not in self.filters:
                self.filters.append(topic_filter)

    def route(self, topic):
        """(kind, device named by the topic or None); Reject if no template fits."""
        for kind, pattern in self._routes:
            found = pattern.fullmatch(topic)
            if found is not None:
                named = set(found.groups())
                if len(named) > 1:
                    raise Reject("topic names two devices: %s" % ", ".join(sorted(named)))
                return kind, named.pop() if named else None
        raise Reject("topic fits none of the data, health and status templates")


def _decode(payload):
    try:
        message = json.loads(payload)
    except UnicodeDecodeError:
        raise Reject("not UTF-8") from None
    except ValueError:
        raise Reject("not JSON") from None
    if type(message) is not dict:
        raise Reject("not a JSON object")
    return message


def _device(message, from_topic):
    device = message.get("device", from_topic)
    if device is None:
        raise Reject("no device: neither the topic nor the payload names one")
    if type(device) is not str or not _ID_RULE[1](device):
        raise Reject("device %r: not a device id (%s)" % (device, _ID_RULE[2]))
    if from_topic is not None and device != from_topic:
        raise Reject("device %r in the payload, %r in the topic" % (device, from_topic))
    return device


def _is_int(value):
    return type(value) is int


def canonical(reading):
    return json.dumps(reading, sort_keys=True, separators=(",", ":"))


def dated_later(first, again):
    """Whether reading `again` (a dict) is `first` with the ts that `first` lacked: a
    reading taken before the board's clock was known and sent again once it was (app.py
    dates it then). The same reading, not a conflict."""
    return "ts" not in first and "ts" in again and len(again) == len(first) + 1 and all(
        key in again and again[key] == value for key, value in first.items())


def data(payload, from_topic):
    """(device, [(seq, canonical reading)]) of a data message."""
    message = _decode(payload)
    device = _device(message, from_topic)
    readings = message.get("readings")
    if type(readings) is not list or not readings:
        raise Reject("no readings: a data message has a non-empty list \"readings\"")
    rows = []
    for index, reading in enumerate(readings):
        if type(reading) is not dict or not _is_int(reading.get("seq")) or reading["seq"] < 0:
            raise Reject("reading %d: not an object with a \"seq\" of 0 or more" % index)
        rows.append((reading["seq"], canonical(reading)))
    return device, rows


def health(payload, from_topic):
    """(device, {column: value}) of a health message."""
    message = _decode(payload)
    device = _device(message, from_topic)
    for key in _HEALTH_REQUIRED:
        if not _is_int(message.get(key)):
            raise Reject("health: %r missing or not an integer" % key)
    if type(message.get("mem_status")) is not str:
        raise Reject("health: 'mem_status' missing or not a string")
    fields = {"window_number": message["window"], "mem_used": message["mem_used"],
              "mem_peak": message["mem_peak"], "mem_status": message["mem_status"]}
    for key, column in _HEALTH_OPTIONAL.items():
        value = message.get(key)
        if value is not None and not _is_int(value):
            raise Reject("health: %r not an integer" % key)
        fields[column] = value
    return device, fields


def status(payload, from_topic):
    """The device of a status message (a command's reply)."""
    return _device(_decode(payload), from_topic)
