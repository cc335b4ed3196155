"""The async MQTT 3.1.1 client over any Stream (read/write/close).

Scoped lifetimes: connect() creates the reader task, the keepalive task, the
in-flight entries and the subscription handlers, each recorded in the ledger with
owner "MQTT". Whoever notices the end (disconnect(), a failed connect(), the reader
at end of stream or on a protocol error, the keepalive task on a missing PINGRESP,
a failed write) runs _teardown(); it runs once, later callers wait for it. It
cancels the tasks, sends DISCONNECT when asked to, closes the stream, awaits the
tasks and releases every ledger entry in a finally block, so nothing of a
connection outlives it, whatever fails on the way. Nothing here reconnects by
itself; robust.py holds that policy.

A persistent session (clean_session=False) keeps its unacknowledged QoS 1/2
messages in the Session across connections (the resume store, at most
inflight_window messages, see pending()); they are sent again, with DUP, right
after the next CONNECT. They are not in the ledger while disconnected.

Pipelining: MQTT lets a client send packets right after CONNECT, before the
CONNACK [MQTT-3.1.4-5] (a broker that refuses the CONNECT processes none of them);
publish(), subscribe() and unsubscribe() may follow connect(stream, wait=False):

    await client.connect(stream, wait=False)              # CONNECT written
    ticket = await client.publish(topic, payload, 1, wait=False)
    present = await client.accepted()                     # the CONNACK
    await client.acked(ticket)

so CONNECT and the first PUBLISHes share one send of a coalescing link (a modem
link: one AT+CIPSEND), and the CONNACK and their PUBACKs one read. The ids are
taken and the messages tracked before they are written, as always; a refused or
failed CONNACK raises from accepted() (and from acked()) what connect() would have
raised, after the same teardown, and no ticket of the connection is done.
"""

import asyncio
from asyncio import Event, Lock

from .. import port
from .._const import const
from ..errors import CellMqttError, LimitExceeded, LinkClosed, LocalProtocolError, SubscribeFailed, Timeout
from ..ledger import INFLIGHT, SUBSCRIPTION, TASK
from ..ledger import ledger as device_ledger
from . import packets as p
from .packets import DEFAULT_MAX_PACKET, Decoder, encode
from .session import CONNECTED, CONNECTING, DEFAULT_MAX_UNACKED, DEFAULT_PING_TIMEOUT_MS, DEFAULT_WINDOW
from .session import DISCONNECT, DISCONNECTED, FAIL, Session
from .topic import matches_levels

OWNER = "MQTT"
# a write over a working link; ends the wait before the modem's own (modem/at.py)
_WRITE_TIMEOUT_MS = const(20000)
_CLOSE_TIMEOUT_MS = const(10000)  # AT+CIPCLOSE answers within a few seconds
_SEND_BUFFER = const(512)  # a telemetry PUBLISH goes out in one write; bigger ones in pieces
# A read allocates its size in one block: a small one fits a fragmented heap, and the few
# packets over it are joined in the decoder's buffer
_READ_BYTES = const(512)
_MAX_SUBSCRIPTIONS = const(16)  # one handler each; a device listens to a few topics
_CONNECT_TIMEOUT_MS = const(30000)  # CONNACK through a cellular link and a busy broker
_ACK_TIMEOUT_MS = const(30000)  # PUBACK, PUBCOMP, SUBACK, UNSUBACK
_GENERATIONS = const(0x3FFF)  # a token names its connection modulo this: it stays a small int
# a subscription: [levels, granted qos, callback, ledger number]
_LEVELS = const(0)
_QOS = const(1)
_CALLBACK = const(2)
_FD = const(3)


async def _bounded(awaitable, timeout_ms, what):
    try:
        return await asyncio.wait_for(awaitable, timeout_ms / 1000)
    except asyncio.TimeoutError:
        raise Timeout(what, timeout_ms)


async def close_quietly(stream, timeout_ms=_CLOSE_TIMEOUT_MS):
    """Close a stream we own, bounded, whatever it raises (not a cancellation)."""
    try:
        await _bounded(stream.close(), timeout_ms, "close")
    except Exception:  # the stream is given up either way
        pass


def _typed(error):
    """Our own errors and a MemoryError (the application may make room and try smaller)
    as they are; anything else (OSError from a socket) as LinkClosed."""
    if isinstance(error, (CellMqttError, MemoryError)):
        return error
    return LinkClosed("%s: %s" % (type(error).__name__, error))


def _called(client, callback, *args):
    """Run an application callback; False when it raised (counted in the client, which
    stays up: an application bug must not take the link down)."""
    try:
        callback(*args)
        return True
    except Exception as error:
        client.callback_errors += 1
        client.last_callback_error = error
        return False


def drop_sub(client, topic_filter, sub):
    """A handler forgotten and released in the ledger, if it is still topic_filter's."""
    if client._subs.get(topic_filter) is sub:
        client._ledger.release(client._subs.pop(topic_filter)[_FD])


class MqttClient:
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
                 send_buffer=_SEND_BUFFER, max_subscriptions=_MAX_SUBSCRIPTIONS,
                 connect_timeout_ms=_CONNECT_TIMEOUT_MS, ack_timeout_ms=_ACK_TIMEOUT_MS,
                 window_timeout_ms=None, write_timeout_ms=_WRITE_TIMEOUT_MS,
                 close_timeout_ms=_CLOSE_TIMEOUT_MS, ping_timeout_ms=DEFAULT_PING_TIMEOUT_MS,
                 on_message=None, ledger=None, on_oversized=None, manual_ack=False,
                 max_unacked=DEFAULT_MAX_UNACKED):
        session = Session(client_id, keepalive_s, clean_session, will, username, password,
                          inflight_window, ping_timeout_ms, max_unacked=max_unacked)
        self._session = session
        self._decoder = Decoder(max_packet)
        self._tx = memoryview(bytearray(send_buffer))
        encode(session.connect_packet, self._tx)  # a bad client id, will or login fails here
        self.write_timeout_ms = write_timeout_ms
        self.close_timeout_ms = close_timeout_ms
        self.on_message = on_message  # messages no subscription matches (a resumed session's backlog)
        self.on_oversized = on_oversized  # on_oversized(topic, size, qos, token): a message over max_packet
        self.manual_ack = manual_ack  # callbacks take a token; QoS 1 PUBACK waits for ack(token)
        self.unhandled = 0  # messages dropped: no subscription matched and no on_message
        self.oversized = 0  # messages over max_packet, read past and acknowledged
        self.last_oversized = None  # (topic, size) of the latest
        self.callback_errors = 0
        self.last_callback_error = None
        self._ledger = device_ledger if ledger is None else ledger
        self._subs = {}
        self._stream = None
        self._tasks = []  # (ledger number, task) of the connection's reader and keepalive
        self._live = False  # connection resources exist (connect started, teardown not finished)
        self._generation = 0  # which connection: a waiter of an ended one never waits on the next
        self._tearing = False
        self._error = None
        self._lock: asyncio.Lock = None  # type: ignore[assignment]  # made per connection
        # per connection, set whenever something a waiter may wait for happened
        self._progress: asyncio.Event = None  # type: ignore[assignment]
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
    def held_back(self):
        """Incoming QoS 1 messages not delivered: max_unacked were waiting for ack()."""
        return self._session.held_back

    def pending(self):
        """Unacknowledged QoS 1/2 messages held for a resumed session (or in flight now)."""
        count = 0
        for entry in self._session.inflight.values():
            if entry.packet.TYPE == p.PUBLISH:
                count += 1
        return count

    def subscriptions(self):
        """{filter: granted qos} of the live subscriptions."""
        granted = {}
        for name, sub in self._subs.items():
            granted[name] = sub[_QOS]
        return granted

    # connection

    async def connect(self, stream, reconnect=False, wait=True):
        """Take ownership of `stream` and open an MQTT session over it; returns the
        CONNACK session-present flag. On any failure (MqttRefused, Timeout, LinkClosed,
        StateError ...) the stream is closed and nothing is held when it raises.
        `reconnect=True` is for a reconnect policy: it is refused unless the link was
        lost (never after the application disconnected).
        wait=False returns None once CONNECT is written: publish() may follow at once,
        and accepted() waits for the CONNACK (pipelining, above)."""
        session = self._session
        try:
            connect_packet = session.start(port.ticks_ms(), reconnect)
        except BaseException as error:
            await close_quietly(stream, self.close_timeout_ms)
            raise error
        self._stream = stream
        self._live = True
        self._generation += 1
        self._error = None
        self._lock = Lock()
        self._progress = Event()
        self._decoder.reset()
        try:
            for entry in session.inflight.values():  # a resumed session's messages are live again
                entry.fd = self._ledger.acquire(INFLIGHT, OWNER, "resume")
            self._start_task("reader", stream)
            await self._send([connect_packet] + session.resend_packets())
        except BaseException as error:
            await self.abort()
            raise error
        if wait:
            return await self.accepted()

    async def accepted(self):
        """Wait for the CONNACK of connect(stream, wait=False), up to
        connect_timeout_ms; returns its session-present flag. A refusal or a failure
        raises as connect() does, with the connection torn down."""
        try:
            await self._until(None, self.connect_timeout_ms, "CONNACK")
        except BaseException as error:
            await self.abort()
            raise error
        return self._session.session_present

    async def disconnect(self):
        """Send DISCONNECT if connected, then tear everything down. Idempotent; also
        cancels a connect() in progress. Afterwards only the application may connect."""
        was = self._session.state
        self._session.move(DISCONNECT)
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
            self._session.move(FAIL)
        await self._teardown(graceful=False)

    def may_reconnect(self):
        """Whether a reconnect policy may connect now (the link was lost, and the
        application has not disconnected)."""
        return self._session.state == DISCONNECTED

    async def wait_disconnected(self, timeout_ms=None):
        """Return once the connection has ended (for a supervisor; None waits unbounded:
        keepalive bounds how long a dead link goes unnoticed)."""
        generation = self._generation
        while self._live and self._generation == generation:
            event = self._progress
            event.clear()
            if timeout_ms is None:
                await event.wait()
            else:
                await _bounded(event.wait(), timeout_ms, "disconnect")

    # messages

    async def publish(self, topic, payload, qos=0, retain=False, wait=True):
        """Send a message; for QoS 1 returns after PUBACK, for QoS 2 after PUBCOMP.
        wait=False returns once the PUBLISH is written, with its ticket (None for QoS 0)
        for acked(): publishes go out in call order, several in flight, also before
        the CONNACK (pipelining, above).
        A full in-flight window waits up to window_timeout_ms, then LimitExceeded.
        An ack timeout raises Timeout and leaves the message in flight."""
        if isinstance(payload, str):
            payload = payload.encode()
        session = self._session
        if qos:
            await self._wait_slot()
        packet, entry = session.publish(topic, payload, qos, retain)
        if entry is not None:
            entry.fd = self._ledger.acquire(INFLIGHT, OWNER, "publish")
        try:
            await self._send(packet)
        except LocalProtocolError as error:
            if entry is not None:
                self._untrack(entry)
            raise error
        if not wait:
            return entry
        await self.acked(entry)

    async def acked(self, ticket):
        """Wait for the PUBACK (QoS 1) or PUBCOMP (QoS 2) of publish(..., wait=False)'s
        ticket, up to ack_timeout_ms from now (Timeout leaves it in flight); raises what
        ended its connection if it ended first. `ticket.done`: acknowledged already."""
        if ticket is None or ticket.done:
            return
        if ticket.fd is None:  # its connection ended (a clean session dropped it, or none resumed it)
            raise LinkClosed(DISCONNECTED) if self._error is None else _typed(self._error)
        await self._until(ticket, self.ack_timeout_ms, "PUBACK" if ticket.packet.qos == 1 else "PUBCOMP")

    async def subscribe(self, topic_filter, qos, callback):
        """Subscribe and route matching messages to callback; returns the granted QoS.
        SubscribeFailed if the broker answers 0x80. Subscribing to a filter again
        replaces its callback."""
        session = self._session
        session.require("subscribe")
        p.filter_bytes(topic_filter)  # LocalProtocolError if invalid
        levels = tuple(topic_filter.split("/"))  # for matches_levels()
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
            sub = [levels, qos, callback, self._ledger.acquire(SUBSCRIPTION, OWNER, topic_filter)]
            self._subs[topic_filter] = sub
        else:
            previous = sub[_CALLBACK]
            sub[_CALLBACK] = callback
        try:
            await self._send(packet)
            await self._until(entry, self.ack_timeout_ms, "SUBACK")
            code = entry.result[0]
            if code == p.SUBACK_FAILURE:
                raise SubscribeFailed(topic_filter)
        except BaseException as error:
            self._untrack(entry)
            if previous is None:
                drop_sub(self, topic_filter, sub)
            else:
                sub[_CALLBACK] = previous
            raise error
        sub[_QOS] = code
        return code

    async def unsubscribe(self, topic_filter):
        """Unsubscribe; the handler stays until UNSUBACK, then is released."""
        from .rare import unsubscribe  # a duty cycle never unsubscribes: loaded on first use

        await unsubscribe(self, topic_filter)

    # internals: waiting

    async def _wait_slot(self):
        """Wait up to window_timeout_ms for a free slot in the in-flight window; if none
        comes, the session refuses the message (LimitExceeded)."""
        session = self._session
        if len(session.inflight) >= session.window and self.window_timeout_ms:
            try:
                await self._until(session, self.window_timeout_ms, "window")
            except Timeout:
                pass

    def _untrack(self, entry):
        if entry.fd is not None:
            self._ledger.release(entry.fd)
            entry.fd = None
        inflight = self._session.inflight
        packet_id = entry.packet_id
        if not entry.done and inflight.get(packet_id) is entry:
            del inflight[packet_id]  # its caller gave up (a timeout): the broker's late answer is ignored

    def _start_task(self, detail, stream):
        """Start a connection task (_loop), in the ledger; the teardown releases both."""
        fd = self._ledger.acquire(TASK, OWNER, detail)
        try:
            self._tasks.append((fd, asyncio.create_task(self._loop(stream))))
        except BaseException as error:
            self._ledger.release(fd)
            raise error

    async def _until(self, waited, timeout_ms, what):
        """Wait until `waited` is ready: an InFlight entry done, the session (a free slot
        in its window), None (CONNACK accepted). The connection ending raises (what
        killed the link), so does timeout_ms."""
        start = port.ticks_ms()
        generation = self._generation
        session = self._session
        flush = getattr(self._stream, "flush", None)  # a coalescing stream (modem/link.py)
        if flush is not None:
            flush()  # the answer needs what is queued, and nothing more comes before it
        while not (session.state == CONNECTED if waited is None else
                   len(session.inflight) < session.window if waited is session else waited.done):
            if not self._live or self._generation != generation:
                raise LinkClosed(DISCONNECTED) if self._error is None else _typed(self._error)
            left = timeout_ms - port.ticks_diff(port.ticks_ms(), start)
            if left <= 0:
                raise Timeout(what, timeout_ms)
            event = self._progress
            event.clear()
            await _bounded(event.wait(), left, what)

    async def _send(self, packet):
        stream = self._stream
        if stream is None:
            raise LinkClosed(DISCONNECTED)
        try:
            await _bounded(self._write(stream, packet), self.write_timeout_ms, "write")
        except LocalProtocolError as error:
            raise error
        except Exception as error:
            await self._lost(error)
            raise _typed(error)
        self._session.last_sent_ms = port.ticks_ms()

    async def _write(self, stream, packet):
        async with self._lock:
            # PUBACKs due together come as a list: one hold of the lock keeps their order
            for one in packet if type(packet) is list else (packet,):
                head, rest = encode(one, self._tx)
                await stream.write(head)
                if rest:
                    await stream.write(rest)

    async def _loop(self, stream):
        """The connection's reader task; with stream None its keepalive task, started at
        the CONNACK: a PINGREQ whenever one is due."""
        session = self._session
        decoder = self._decoder
        read_bytes = min(_READ_BYTES, decoder.max_packet)
        try:
            while not self._tearing:
                if stream is None:
                    packet = session.poll(port.ticks_ms())
                    if packet is not None:
                        await self._send(packet)
                    await port.asleep_ms(session.next_poll_ms(port.ticks_ms()))
                    continue
                data = await stream.read(read_bytes)
                if not data:
                    raise LinkClosed("closed by the broker")
                decoder.feed(data)
                data = None
                while True:
                    packet = decoder.next_packet()
                    if packet is None:
                        break
                    reply, item = session.receive(packet)
                    if item is not None:
                        if isinstance(item, p.Publish):
                            if not self._deliver(item) and item.qos == 1:
                                reply = session.ack(item.packet_id) or None
                        elif item.fd is not None:
                            self._ledger.release(item.fd)
                            item.fd = None
                    if packet.TYPE != p.PUBLISH:
                        if packet.TYPE == p.CONNACK and session.state == CONNECTED and \
                                session.connect_packet.keepalive_s:
                            self._start_task("keepalive", None)  # accepted: from now on it pings
                        self._progress.set()  # CONNACK, an ack: a waiter may go on
                    if reply is not None:
                        await self._send(reply)
                reply = item = None  # nothing of the last read is held while waiting for the next
        except asyncio.CancelledError as error:
            raise error
        except Exception as error:
            await self._lost(error)

    def _deliver(self, message):
        """Hand a message to its callbacks; True when they hold its token, so its PUBACK
        waits for ack(token)."""
        topic = message.topic
        token = None
        if self.manual_ack and message.qos == 1:
            token = (self._generation & _GENERATIONS) << 16 | message.packet_id
        if message.payload is None:  # over max_packet, read past
            from .rare import oversized  # loaded on first use

            return oversized(self, message, token)
        payload = bytes(message.payload)
        args = (topic, payload, message.qos, message.retain) + ((token,) if self.manual_ack else ())
        handled = False
        taken = True
        for sub in self._subs.values():
            if matches_levels(sub[_LEVELS], topic):
                handled = True
                taken = _called(self, sub[_CALLBACK], *args) and taken
        if not handled:
            if self.on_message is None:
                self.unhandled += 1
                return False
            taken = _called(self, self.on_message, *args)
        return taken and token is not None

    async def ack(self, token):
        """Acknowledge an incoming QoS 1 message that a manual_ack callback was given
        `token` for, once the application is done with it. PUBACKs go out in the order
        the messages came; a token of an ended connection is ignored (the broker sends
        that message again)."""
        if token is None or token >> 16 != self._generation & _GENERATIONS or not self.connected:
            return
        due = self._session.ack(token & 0xFFFF)
        if due:
            await self._send(due)

    # internals: teardown

    async def _lost(self, error):
        """The link failed (seen by any task): tear down unless that already runs."""
        if self._tearing or not self._live:
            return
        self._error = error
        if self._session.state in (CONNECTING, CONNECTED):
            self._session.move(FAIL)
        await self._teardown(graceful=False)

    async def _teardown(self, graceful):
        """End the connection: tasks, stream, ledger entries. Runs once; a second
        caller waits for the first. A cancellation on the way is re-raised at the end,
        after everything is released."""
        if self._tearing:
            await self.wait_disconnected(self.write_timeout_ms + 2 * self.close_timeout_ms)
            return
        self._tearing = True
        interrupted: BaseException | None = None
        current = asyncio.current_task()
        try:
            tasks = []
            for _, task in self._tasks:
                if task is not current:
                    task.cancel()
                    tasks.append(task)
            if graceful:
                try:
                    await self._send(p.DISCONNECT_PACKET)
                except BaseException as error:
                    if isinstance(error, asyncio.CancelledError):
                        interrupted = error
            # Closed before the tasks are awaited: a task that lost its cancellation
            # (CPython 3.11's wait_for can return a result instead) ends at the stream.
            for _ in range(2):  # a close cut short by a cancellation is tried once more
                try:
                    await close_quietly(self._stream, self.close_timeout_ms)
                    break
                except asyncio.CancelledError as error:
                    interrupted = error
            for task in tasks:
                while not task.done():
                    task.cancel()
                    try:
                        await task
                    except BaseException as error:
                        if not task.done():
                            interrupted = error  # we were cancelled ourselves: finish first
        finally:
            book = self._ledger
            for entry in self._session.inflight.values():
                if entry.fd is not None:
                    book.release(entry.fd)
                    entry.fd = None
            for sub in self._subs.values():
                book.release(sub[_FD])
            self._subs.clear()
            for fd, _ in self._tasks:
                book.release(fd)
            self._tasks.clear()
            self._stream = None
            self._live = False
            self._tearing = False
            try:
                self._session.end_connection()
            finally:
                self._progress.set()
        if interrupted is not None:
            raise interrupted
