"""The downlink inbox: the commands of a window as they arrive, kept until the duty
cycle answers them (commands.py checks and applies them, loaded with the first).

Each is held with the token that acknowledges it (MqttClient manual_ack), and only
acknowledged once answered, so none is lost in silence.
"""

from ._const import const

MAX_COMMAND_BYTES = const(256)  # a command is a short object; anything bigger is refused unread
_PUBLISH_HEAD = const(7)  # a PUBLISH's bytes besides topic and payload: header, lengths, id
# counters wrap at 2**30 without an int past it: on a 32-bit port that is a heap object
_WRAP = const(0x3FFFFFFF)


class Inbox:
    """The commands of one window, in the order they came, each with the token that
    acknowledges it. The MQTT reader calls put() and put_oversized() and must not
    block. At most `limit` are taken a window; the rest are let go unacknowledged, so
    the broker keeps them for a later window: its queue is the buffer, not the board's
    heap. `items`: those held, (payload or size, token), oldest first; the duty cycle
    answers them from the front (commands.py), and the broker sends more as earlier
    ones are acknowledged: they join while it answers. `largest`: the largest PUBLISH on
    the command `topic` that is read whole (MqttClient max_packet); a bigger one is
    skipped unread and answered by its size (put_oversized)."""

    def __init__(self, limit, topic):
        self.limit = limit
        self.largest = MAX_COMMAND_BYTES + len(topic.encode()) + _PUBLISH_HEAD
        self.items = []
        self._taken = 0
        self.deferred = 0  # let go for a later window (wraps at 2**30, as does oversized)
        self.oversized = 0  # too large to be read: answered with their size

    def open(self):
        """A new window: nothing held, `limit` to take."""
        self.items = []
        self._taken = 0

    def put(self, topic, payload, qos, retain, token=None):
        if self._taken >= self.limit:
            self.defer(1)
            return
        self._taken += 1
        if type(payload) is not int:  # an int: put_oversized's size, which is what is kept
            payload = bytes(payload) if len(payload) <= MAX_COMMAND_BYTES else len(payload)
        self.items.append((payload, token))

    def put_oversized(self, topic, size, qos, token=None):
        self.oversized = self.oversized + 1 if self.oversized < _WRAP else 0
        self.put(topic, size, qos, False, token)

    def close(self):
        """The window answers no more: what is held and whatever comes later is let go."""
        self.defer(len(self.items))
        self.items = []
        self._taken = self.limit

    def defer(self, count):
        left = self.deferred - _WRAP - 1 + count  # left to right: each step a small int
        self.deferred = left if left >= 0 else left + _WRAP + 1
