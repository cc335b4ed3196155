"""The async MQTT 3.1.1 client over any Stream (read/write/close).

Scoped lifetimes: connect() creates the reader task, the keepalive task, the
in-flight entries and the subscription handlers, each recorded in the ledger with
owner "MQTT". Every way out of a connection (disconnect(), a failed connect(), a
dead link) runs one teardown (_scope.py) that cancels and awaits the tasks, closes
the stream and releases every entry before it returns, whatever fails on the way.
Nothing here reconnects by itself; robust.py holds that policy.

A persistent session (clean_session=False) keeps its unacknowledged QoS 1/2
messages in the Session across connections (the resume store, at most
inflight_window messages, see pending()); they are sent again, with DUP, after
the next CONNACK. They are not in the ledger while disconnected.
"""

from .. import port
from .._const import const
from ..errors import LimitExceeded, LinkClosed, LocalProtocolError, SubscribeFailed, Timeout
from ..ledger import INFLIGHT, SUBSCRIPTION
from ..ledger import ledger as device_ledger
from . import packets as p
from ._scope import DEFAULT_CLOSE_TIMEOUT_MS, DEFAULT_WRITE_TIMEOUT_MS, OWNER, Scope, Subscription
from ._scope import _bounded, close_quietly
from .decoder import DEFAULT_MAX_PACKET
from .encoder import encode
from .session import CONNECTED, CONNECTING, DEFAULT_MAX_UNACKED, DEFAULT_PING_TIMEOUT_MS, DEFAULT_WINDOW, RECONNECT, Session
from .topic import compile_filter

DEFAULT_SEND_BUFFER = const(512)  # a telemetry PUBLISH goes out in one write; bigger ones in pieces
DEFAULT_MAX_SUBSCRIPTIONS = const(16)  # one handler each; a device listens to a few topics
DEFAULT_CONNECT_TIMEOUT_MS = const(30000)  # CONNACK through a cellular link and a busy broker
DEFAULT_ACK_TIMEOUT_MS = const(30000)  # PUBACK, PUBCOMP, SUBACK, UNSUBACK


class MqttClient(Scope):
    """An MQTT 3.1.1 client. Callbacks are plain functions
    `callback(topic: str, payload: bytes, qos: int, retain: bool)`, run by the reader
    task before the message is acknowledged; they must not block.

    manual_ack=True: callbacks take a fifth argument, `token` (None unless QoS 1), and a
    QoS 1 message is acknowledged only when the application calls `await ack(token)`;
    one never acknowledged is sent again by the broker on a later connection (a
    persistent session), so the broker's queue holds what the device cannot take yet.
    At most max_unacked wait for ack(); later ones on that connection are not delivered
    (counted in `held_back`) and come again on the next.
    A PUBLISH over max_packet is read past in bounded memory, acknowledged (with
    manual_ack, when on_oversized took its token), counted in `oversized`, and
    reported to `on_oversized(topic, size, qos, token)`; the connection carries on."""

    def __init__(self, client_id, keepalive_s=60, clean_session=True, will=None, username=None,
                 password=None, max_packet=DEFAULT_MAX_PACKET, inflight_window=DEFAULT_WINDOW,
                 send_buffer=DEFAULT_SEND_BUFFER, max_subscriptions=DEFAULT_MAX_SUBSCRIPTIONS,
                 connect_timeout_ms=DEFAULT_CONNECT_TIMEOUT_MS, ack_timeout_ms=DEFAULT_ACK_TIMEOUT_MS,
                 window_timeout_ms=None, write_timeout_ms=DEFAULT_WRITE_TIMEOUT_MS,
                 close_timeout_ms=DEFAULT_CLOSE_TIMEOUT_MS, ping_timeout_ms=DEFAULT_PING_TIMEOUT_MS,
                 on_message=None, ledger=None, on_oversized=None, manual_ack=False,
                 max_unacked=DEFAULT_MAX_UNACKED):
        session = Session(client_id, keepalive_s, clean_session, will, username, password,
                          inflight_window, ping_timeout_ms, ticks_diff=port.ticks_diff,
                          max_unacked=max_unacked)
        Scope.__init__(self, session, max_packet, send_buffer, write_timeout_ms, close_timeout_ms,
                       on_message, device_ledger if ledger is None else ledger, on_oversized, manual_ack)
        encode(session.connect_packet, self._tx)  # a bad client id, will or login fails here
        self.max_subscriptions = max_subscriptions
        self.connect_timeout_ms = connect_timeout_ms
        self.ack_timeout_ms = ack_timeout_ms
        self.window_timeout_ms = ack_timeout_ms if window_timeout_ms is None else window_timeout_ms

    # state

    @property
    def state(self):
        return self._session.state

    @property
    def connected(self):
        return self._session.state == CONNECTED

    @property
    def session_present(self):
        return self._session.session_present

    @property
    def held_back(self):
        """Incoming QoS 1 messages not delivered: max_unacked were waiting for ack()."""
        return self._session.held_back

    def pending(self):
        """Unacknowledged QoS 1/2 messages held for a resumed session (or in flight now)."""
        return sum(1 for entry in self._session.inflight.values() if entry.packet.TYPE == p.PUBLISH)

    def subscriptions(self):
        """{filter: granted qos} of the live subscriptions."""
        return {name: sub.qos for name, sub in self._subs.items()}

    # connection

    async def connect(self, stream, reconnect=False):
        """Take ownership of `stream` and open an MQTT session over it; returns the
        CONNACK session-present flag. On any failure (MqttRefused, Timeout, LinkClosed,
        StateError ...) the stream is closed and nothing is held when it raises.
        `reconnect=True` is for a reconnect policy: it is refused unless the link was
        lost (never after the application disconnected)."""
        session = self._session
        try:
            connect_packet = session.start(port.ticks_ms(), reconnect)
        except BaseException as error:
            await close_quietly(stream, self.close_timeout_ms)
            raise error
        self._open_scope(stream)
        try:
            for entry in session.inflight.values():  # a resumed session's messages are live again
                entry.fd = self._ledger.acquire(INFLIGHT, OWNER, "resume")
            self._reader_fd, self._reader = self._start_task("reader", self._read_loop, stream)
            await self._send(connect_packet)
            await self._until(self._is_connected, self.connect_timeout_ms, "CONNACK")
            if connect_packet.keepalive_s:
                self._pinger_fd, self._pinger = self._start_task("keepalive", self._keepalive)
            for packet in session.resend_packets():
                await self._send(packet)
            return session.session_present
        except BaseException as error:
            await self.abort()
            raise error

    async def disconnect(self):
        """Send DISCONNECT if connected, then tear everything down. Idempotent; also
        cancels a connect() in progress. Afterwards only the application may connect."""
        was = self._session.state
        self._session.begin_disconnect()
        if self._live:
            await self._teardown(graceful=(was == CONNECTED))

    async def abort(self):
        """Drop the connection as if the link had died: no DISCONNECT (the broker
        publishes the will), and a reconnect policy may connect again afterwards."""
        if not self._live:
            return
        if self._session.state in (CONNECTING, CONNECTED):
            if self._error is None:
                self._error = LinkClosed("aborted")
            self._session.fail()
        await self._teardown(graceful=False)

    def may_reconnect(self):
        """Whether a reconnect policy may connect now (the link was lost, and the
        application has not disconnected)."""
        return self._session.allows(RECONNECT)

    async def wait_disconnected(self, timeout_ms=None):
        """Return once the connection has ended (for a supervisor; None waits unbounded:
        keepalive bounds how long a dead link goes unnoticed)."""
        while self._live:
            event = self._progress
            event.clear()
            if timeout_ms is None:
                await event.wait()
            else:
                await _bounded(event.wait(), timeout_ms, "disconnect")

    # messages

    async def publish(self, topic, payload, qos=0, retain=False):
        """Send a message; for QoS 1 returns after PUBACK, for QoS 2 after PUBCOMP.
        A full in-flight window waits up to window_timeout_ms, then LimitExceeded.
        An ack timeout raises Timeout and leaves the message in flight."""
        if isinstance(payload, str):
            payload = payload.encode()
        session = self._session
        session.require(CONNECTED, "publish")
        if qos:
            await self._wait_slot()
        packet, entry = session.publish(topic, payload, qos, retain)
        if entry is None:
            await self._send(packet)
            return
        entry.fd = self._ledger.acquire(INFLIGHT, OWNER, "publish")
        try:
            await self._send(packet)
        except LocalProtocolError as error:
            self._untrack(entry)
            raise error
        await self._until(lambda: entry.done, self.ack_timeout_ms, "PUBACK" if qos == 1 else "PUBCOMP")

    async def subscribe(self, topic_filter, qos, callback):
        """Subscribe and route matching messages to callback; returns the granted QoS.
        SubscribeFailed if the broker answers 0x80. Subscribing to a filter again
        replaces its callback."""
        session = self._session
        session.require(CONNECTED, "subscribe")
        try:
            levels = compile_filter(topic_filter)
        except (ValueError, TypeError) as error:
            raise LocalProtocolError("topic filter %r: %s" % (topic_filter, error))
        old = self._subs.get(topic_filter)
        if old is None and len(self._subs) >= self.max_subscriptions:
            raise LimitExceeded("subscriptions", self.max_subscriptions)
        await self._wait_slot()
        packet, entry = session.subscribe([(topic_filter, qos)])
        entry.fd = self._ledger.acquire(INFLIGHT, OWNER, "subscribe")
        # The handler is in place before SUBACK: retained messages follow it at once.
        sub = self._subs.get(topic_filter)
        previous = None
        if sub is None:
            sub = Subscription(levels, qos, callback, self._ledger.acquire(SUBSCRIPTION, OWNER, topic_filter))
            self._subs[topic_filter] = sub
        else:
            previous = sub.callback
            sub.callback = callback
        try:
            await self._send(packet)
            await self._until(lambda: entry.done, self.ack_timeout_ms, "SUBACK")
            code = entry.result[0]
            if code == p.SUBACK_FAILURE:
                raise SubscribeFailed(topic_filter)
        except BaseException as error:
            self._untrack(entry)
            if previous is None:
                self._drop_sub(topic_filter, sub)
            else:
                sub.callback = previous
            raise error
        sub.qos = code
        return code

    async def unsubscribe(self, topic_filter):
        """Unsubscribe; the handler stays until UNSUBACK, then is released."""
        session = self._session
        session.require(CONNECTED, "unsubscribe")
        await self._wait_slot()
        packet, entry = session.unsubscribe([topic_filter])
        entry.fd = self._ledger.acquire(INFLIGHT, OWNER, "unsubscribe")
        try:
            await self._send(packet)
            await self._until(lambda: entry.done, self.ack_timeout_ms, "UNSUBACK")
        except BaseException as error:
            self._untrack(entry)
            raise error
        sub = self._subs.get(topic_filter)
        if sub is not None:
            self._drop_sub(topic_filter, sub)

    # internals: waiting

    async def _wait_slot(self):
        session = self._session
        if not session.window_full():
            return
        if not self.window_timeout_ms:
            raise LimitExceeded("in-flight window", session.window)
        try:
            await self._until(lambda: not session.window_full(), self.window_timeout_ms, "window")
        except Timeout:
            raise LimitExceeded("in-flight window", session.window)

    def _untrack(self, entry):
        if entry.fd is not None:
            self._ledger.release(entry.fd)
            entry.fd = None
        if not entry.done:
            self._session.forget(entry)

    def _drop_sub(self, topic_filter, sub):
        fd = sub.fd
        if self._subs.get(topic_filter) is sub:
            del self._subs[topic_filter]
            self._ledger.release(fd)
