"""The sans-IO MQTT 3.1.1 client session: packets and a clock value in, packets out.

How it works:
- `state` is the one connection state, moved only through the legal moves (move());
  any other raises StateError, so an illegal order of calls (reconnecting while a
  disconnect runs) cannot happen:

    CLOSED --connect--> CONNECTING --accepted--> CONNECTED
    CONNECTING/CONNECTED --fail--> ERROR --down--> DISCONNECTED
    CONNECTING/CONNECTED/ERROR --disconnect--> DISCONNECTING --down--> CLOSED
    DISCONNECTED --connect|reconnect--> CONNECTING

  CLOSED means the application chose to be offline (the initial state too); only the
  application may connect from there. DISCONNECTED means the link was lost; a
  reconnect policy may use `reconnect` from there, and only from there.
- `inflight` maps our packet ids to InFlight entries: QoS 1 and 2 PUBLISH waiting
  for PUBACK / PUBREC+PUBCOMP, SUBSCRIBE waiting for SUBACK, UNSUBSCRIBE for
  UNSUBACK. Its size is bounded by `window`. Ids wrap within 1..65535 and skip ids
  in use.
- QoS 1 PUBLISH from the broker are delivered, and acknowledged when the shell calls
  ack(id): at once, or when the application is done with the message (manual
  acknowledgement). PUBACKs go out in the order the PUBLISHes came [MQTT-4.6.0-2]: an
  ack waits for every earlier one. At most `max_unacked` wait; past that a message,
  and every later one on this connection (so the acknowledged ones stay a prefix), is
  neither delivered nor acknowledged: the broker sends them again on a later
  connection (counted in `held_back`).
- QoS 2 PUBLISH from the broker are delivered once, on arrival, and their ids held
  until PUBREL ([MQTT-4.3.3-2], method B), so a resent PUBLISH is not delivered twice.
- Keepalive: poll(now_ms) says when to send PINGREQ (nothing sent for keepalive_s)
  and raises Timeout when a PINGRESP is overdue; next_poll_ms(now_ms) says when to ask
  again, whichever of the two comes first.
- end_connection() keeps, for a persistent session (clean_session=False), the
  unacknowledged PUBLISH entries and held QoS 2 ids: the resume store, bounded by
  `window` and `max_incoming_qos2`. resend_packets() gives them back with the CONNECT,
  PUBLISH with DUP and the same id, or PUBREL in QoS 2's second phase [MQTT-4.4.0-1].
"""

from .. import port
from .._const import const
from ..errors import ConfigError, LimitExceeded, MqttRefused, RemoteProtocolError, StateError, Timeout
from . import packets as p

DEFAULT_WINDOW = const(8)  # unacknowledged packets we keep; each holds its payload
_MAX_INCOMING_QOS2 = const(32)  # above mosquitto's default in-flight window of 20
DEFAULT_MAX_UNACKED = const(32)  # incoming QoS 1 messages whose PUBACK waits for the application
DEFAULT_PING_TIMEOUT_MS = const(20000)  # a PINGRESP over a cellular link within 20 s
_MAX_ID = const(65535)

# states
CLOSED = "closed"
CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTING = "disconnecting"
ERROR = "error"
DISCONNECTED = "disconnected"

# actions
CONNECT = "connect"
RECONNECT = "reconnect"
ACCEPTED = "accepted"
FAIL = "fail"
DISCONNECT = "disconnect"
DOWN = "down"

class InFlight:
    """One exchange waiting for the broker; `fd` (its ledger entry) is the I/O shell's."""

    def __init__(self, packet, order):
        self.packet_id = packet.packet_id
        self.packet = packet  # Publish, Subscribe or Unsubscribe
        self.released = False  # QoS 2: PUBREC came, PUBREL sent, PUBCOMP awaited
        self.done = False  # the broker completed it
        self.order = order  # resend in the original order [MQTT-4.6.0-1]
        self.result = None  # SUBACK return codes
        self.fd = None


class Session:
    def __init__(self, client_id, keepalive_s=60, clean_session=True, will=None, username=None,
                 password=None, window=DEFAULT_WINDOW, ping_timeout_ms=DEFAULT_PING_TIMEOUT_MS,
                 max_incoming_qos2=_MAX_INCOMING_QOS2, ticks_diff=None,
                 max_unacked=DEFAULT_MAX_UNACKED):
        if not 0 < window <= _MAX_ID:
            raise ConfigError("inflight_window", "1..65535")
        if not 0 <= keepalive_s <= _MAX_ID:
            raise ConfigError("keepalive_s", "0..65535")
        self.connect_packet = p.Connect(client_id, clean_session, keepalive_s, will, username, password)
        self.window = window
        self.ping_timeout_ms = ping_timeout_ms
        self.max_incoming_qos2 = max_incoming_qos2
        self._diff = ticks_diff or port.ticks_diff
        self.state = CLOSED
        self.inflight = {}
        self.incoming_qos2 = set()
        self.max_unacked = max_unacked
        self._unacked = []  # incoming QoS 1 ids in arrival order, PUBACK not sent yet
        self._answered = set()  # those of them ack() was called for
        self._stalled = False  # one was held back: no later one is delivered on this connection
        self.held_back = 0
        self.session_present = False
        self._next_id = 1
        self._order = 0
        self.last_sent_ms = 0  # when a packet last went out: the keepalive interval restarts [MQTT-3.1.2-23]
        self._ping_sent_ms = None

    def move(self, action):
        """Apply an action; returns the new state or raises StateError. The legal moves
        (action: from state -> to state):
            connect: closed, disconnected -> connecting
            reconnect: disconnected -> connecting
            accepted: connecting -> connected
            fail: connecting, connected, error -> error; disconnecting -> disconnecting
            disconnect: connecting, connected, error, disconnecting -> disconnecting;
                disconnected, closed -> closed
            down: error -> disconnected; disconnecting -> closed"""
        state = self.state
        following = None
        if action == DISCONNECT:
            following = CLOSED if state == CLOSED or state == DISCONNECTED else DISCONNECTING
        elif action == FAIL:
            if state != CLOSED and state != DISCONNECTED:
                following = DISCONNECTING if state == DISCONNECTING else ERROR
        elif action == DOWN:
            following = DISCONNECTED if state == ERROR else CLOSED if state == DISCONNECTING else None
        elif action == ACCEPTED:
            following = CONNECTED if state == CONNECTING else None
        elif state == DISCONNECTED or state == CLOSED and action == CONNECT:
            following = CONNECTING
        if following is None:
            raise StateError("mqtt", state, action)
        self.state = following
        return following

    def require(self, action):
        """StateError unless a packet may be sent: CONNECTED, or CONNECTING once CONNECT
        is out, before its CONNACK [MQTT-3.1.4-5]."""
        if self.state != CONNECTED and self.state != CONNECTING:
            raise StateError("mqtt", self.state, action)

    # connection lifecycle

    def start(self, now_ms, reconnect=False):
        """Begin a connection: the CONNECT packet to send."""
        self.move(RECONNECT if reconnect else CONNECT)
        self.session_present = False
        self.last_sent_ms = now_ms
        self._ping_sent_ms = None
        return self.connect_packet

    def end_connection(self):
        """Teardown finished: drop what does not outlive the connection."""
        self.move(DOWN)
        persistent = not self.connect_packet.clean_session
        for packet_id in list(self.inflight):
            entry = self.inflight[packet_id]
            entry.fd = None
            if not (persistent and entry.packet.TYPE == p.PUBLISH):
                del self.inflight[packet_id]
        if not persistent:
            self.incoming_qos2.clear()
        self._unacked.clear()  # the broker sends them again (or, clean, forgets them)
        self._answered.clear()
        self._stalled = False
        self._ping_sent_ms = None

    def resend_packets(self):
        """Packets to send again right after CONNECT, oldest first."""
        entries = sorted(self.inflight.values(), key=_order_of)
        out = []
        for entry in entries:
            packet = entry.packet
            if entry.released:
                out.append(p.Bare(p.PUBREL, entry.packet_id))
            else:
                packet.dup = True
                out.append(packet)
        return out

    # outgoing

    def publish(self, topic, payload, qos=0, retain=False):
        """(packet, entry): the PUBLISH to send and its InFlight entry (None for QoS 0)."""
        self.require("publish")
        p.topic_bytes(topic)
        p.check_qos(qos, "PUBLISH")
        packet = p.Publish(topic, payload, qos, retain)
        return packet, self._track(packet) if qos else None

    def subscribe(self, topics):
        """(packet, entry) for a SUBSCRIBE of [(filter, qos), ...]."""
        self.require("subscribe")
        for filter_, qos in topics:
            p.filter_bytes(filter_)
            p.check_qos(qos, "SUBSCRIBE")
        packet = p.Subscribe(None, topics)
        return packet, self._track(packet)

    def unsubscribe(self, filters):
        self.require("unsubscribe")
        for filter_ in filters:
            p.filter_bytes(filter_)
        from .rare import Unsubscribe  # a duty cycle never unsubscribes: loaded on first use

        packet = Unsubscribe(None, filters)
        return packet, self._track(packet)

    def _track(self, packet):
        """The packet's InFlight entry, with a free packet id given to the packet."""
        inflight = self.inflight
        if len(inflight) >= self.window:
            raise LimitExceeded("in-flight window", self.window)
        packet_id = self._next_id
        while packet_id in inflight:
            packet_id = packet_id % _MAX_ID + 1
        self._next_id = packet_id % _MAX_ID + 1
        packet.packet_id = packet_id
        self._order += 1
        entry = InFlight(packet, self._order)
        inflight[packet_id] = entry
        return entry

    # keepalive

    def poll(self, now_ms):
        """PINGREQ when one is due, None otherwise; Timeout when PINGRESP is overdue.
        A PINGREQ is due one keepalive after the last packet sent, even while an earlier
        one is unanswered: the broker's timer [MQTT-3.1.2-24] does not know our deadline."""
        keepalive_ms = self.connect_packet.keepalive_s * 1000
        if not keepalive_ms or self.state != CONNECTED:
            return None
        if self._ping_sent_ms is not None and self._diff(now_ms, self._ping_sent_ms) >= self.ping_timeout_ms:
            raise Timeout("PINGRESP", self.ping_timeout_ms)
        if self._diff(now_ms, self.last_sent_ms) < keepalive_ms:
            return None
        if self._ping_sent_ms is None:
            self._ping_sent_ms = now_ms  # the deadline runs from the first unanswered one
        self.last_sent_ms = now_ms
        return p.PINGREQ_PACKET

    def next_poll_ms(self, now_ms):
        """Milliseconds until poll() may decide something new (at least 1): the next
        PINGREQ or the PINGRESP deadline, whichever comes first."""
        due = self.connect_packet.keepalive_s * 1000 - self._diff(now_ms, self.last_sent_ms)
        if self._ping_sent_ms is not None:
            due = min(due, self.ping_timeout_ms - self._diff(now_ms, self._ping_sent_ms))
        return due if due > 1 else 1

    # incoming

    def receive(self, packet):
        """Handle one packet from the broker: (reply or None, item or None), where the
        item is a Publish to deliver or an InFlight entry that just completed.
        A refused CONNACK raises MqttRefused; a broken rule RemoteProtocolError."""
        kind = packet.TYPE
        state = self.state
        if state == CONNECTING:
            if kind != p.CONNACK:
                raise RemoteProtocolError("first packet not CONNACK")  # [MQTT-3.2.0-1]
            code = packet.return_code
            if code:
                self.move(FAIL)
                from .rare import REFUSAL_NAMES  # the connection ends here: loaded for a refusal only

                raise MqttRefused(code, REFUSAL_NAMES[code])
            if packet.session_present and self.connect_packet.clean_session:
                raise RemoteProtocolError("session present after clean session")  # [MQTT-3.2.2-1]
            self.move(ACCEPTED)
            self.session_present = packet.session_present
            if not packet.session_present:
                self.incoming_qos2.clear()  # the broker will not release them: no false duplicates
            return None, None
        if state != CONNECTED:
            return None, None  # teardown under way: nothing more is acted on
        if kind == p.PUBREL or kind == p.PUBREC or kind == p.PUBLISH and packet.qos == 2:
            from .rare import receive  # QoS 2: loaded on first use

            return receive(self, packet)
        if kind == p.PUBLISH:
            if packet.qos == 0:
                return None, packet
            ids = self._unacked
            if packet.packet_id in ids:
                return None, None  # a resend of one delivered already
            if self._stalled or len(ids) >= self.max_unacked:
                self._stalled = True
                self.held_back += 1
                return None, None
            ids.append(packet.packet_id)
            return None, packet
        if kind == p.PINGRESP:
            self._ping_sent_ms = None
            return None, None
        entry = self.inflight.get(getattr(packet, "packet_id", None))
        if kind == p.SUBACK and entry is not None and entry.packet.TYPE == p.SUBSCRIBE:
            if len(packet.return_codes) != len(entry.packet.topics):
                raise RemoteProtocolError("SUBACK codes for %d filters" % len(entry.packet.topics))
            entry.result = packet.return_codes
        if kind in (p.PUBACK, p.PUBCOMP, p.SUBACK, p.UNSUBACK):
            return None, self._complete(entry, kind)
        raise RemoteProtocolError("unexpected type %d" % kind)

    def ack(self, packet_id):
        """Done with incoming QoS 1 message packet_id: the PUBACKs now due, oldest
        first; none while an earlier message is still open [MQTT-4.6.0-2]."""
        ids = self._unacked
        if packet_id not in ids:
            return ()
        answered = self._answered
        answered.add(packet_id)
        count = 0
        while count < len(ids) and ids[count] in answered:
            answered.discard(ids[count])
            count += 1
        due = []
        for done in ids[:count]:
            due.append(p.Bare(p.PUBACK, done))
        del ids[:count]
        return due

    def _complete(self, entry, kind):
        if entry is None:
            return None  # an ack for an id we no longer track (given up on): nothing to do
        sent = entry.packet
        # what the entry waits for: SUBACK, UNSUBACK (its packet type's next), PUBACK for
        # QoS 1; for QoS 2 PUBREC (again too, a resend), then PUBCOMP once released
        awaited = sent.TYPE + 1
        if awaited == p.PUBACK and sent.qos == 2:
            awaited = p.PUBCOMP if entry.released and kind != p.PUBREC else p.PUBREC
        if kind != awaited:
            raise RemoteProtocolError("type %d does not answer id %d" % (kind, entry.packet_id))
        if kind != p.PUBREC:
            del self.inflight[entry.packet_id]
            entry.done = True
        return entry


def _order_of(entry):
    return entry.order
