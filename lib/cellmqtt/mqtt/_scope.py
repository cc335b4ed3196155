"""The scope of one MQTT connection: its stream, reader and keepalive tasks, in-flight
ledger entries and subscription handlers, and the one teardown that ends them all.

Whoever notices the end (disconnect(), a failed connect(), the reader at end of
stream or on a protocol error, the keepalive task on a missing PINGRESP, a failed
write) runs _teardown(); it runs once, later callers wait for it. It cancels the
tasks, sends DISCONNECT when asked to, closes the stream, awaits the tasks and
releases every ledger entry in a finally block, so nothing of a connection outlives
it. MqttClient (client.py) puts the public API on top.
"""

import asyncio

from .. import port
from .._const import const
from ..errors import CellMqttError, LinkClosed, LocalProtocolError, Timeout
from ..ledger import TASK
from . import packets as p
from .decoder import Decoder
from .encoder import encode
from .session import CONNECTED, CONNECTING
from .topic import matches_levels

OWNER = "MQTT"
DEFAULT_WRITE_TIMEOUT_MS = const(20000)  # above the SIM7600's 15 s CIPSEND timeout
DEFAULT_CLOSE_TIMEOUT_MS = const(10000)  # AT+CIPCLOSE answers within a few seconds
_GENERATIONS = const(0x3FFF)  # a token names its connection modulo this: it stays a small int


async def _bounded(awaitable, timeout_ms, what):
    try:
        return await asyncio.wait_for(awaitable, timeout_ms / 1000)
    except asyncio.TimeoutError:
        raise Timeout(what, timeout_ms)


async def close_quietly(stream, timeout_ms=DEFAULT_CLOSE_TIMEOUT_MS):
    """Close a stream we own, bounded, whatever it raises (not a cancellation)."""
    try:
        await _bounded(stream.close(), timeout_ms, "close")
    except Exception:  # the stream is given up either way
        pass


def _typed(error):
    """Our own errors as they are; anything else (OSError from a socket) as LinkClosed."""
    if isinstance(error, CellMqttError):
        return error
    return LinkClosed("%s: %s" % (type(error).__name__, error))


class Subscription:
    __slots__ = ("levels", "qos", "callback", "fd")

    def __init__(self, levels, qos, callback, fd):
        self.levels = levels
        self.qos = qos
        self.callback = callback
        self.fd = fd


class Scope:
    """The per-connection machinery under MqttClient."""

    def __init__(self, session, max_packet, send_buffer, write_timeout_ms, close_timeout_ms, on_message,
                 ledger, on_oversized=None, manual_ack=False):
        self._session = session
        self._decoder = Decoder(max_packet)
        self._tx = memoryview(bytearray(send_buffer))
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
        self._ledger = ledger
        self._subs = {}
        self._stream = None
        self._reader = self._pinger = None
        self._reader_fd = self._pinger_fd = None
        self._live = False  # connection resources exist (connect started, teardown not finished)
        self._generation = 0  # which connection: a waiter of an ended one never waits on the next
        self._tearing = False
        self._error = None
        self._lock: asyncio.Lock = None  # type: ignore[assignment]  # made per connection
        # per connection, set whenever something a waiter may wait for happened
        self._progress: asyncio.Event = None  # type: ignore[assignment]

    def _open_scope(self, stream):
        self._stream = stream
        self._live = True
        self._generation += 1
        self._error = None
        self._lock = asyncio.Lock()
        self._progress = asyncio.Event()
        self._decoder.reset()

    def _start_task(self, detail, body, *args):
        """(ledger number, task) of a connection task; the teardown releases both."""
        fd = self._ledger.acquire(TASK, OWNER, detail)
        try:
            return fd, asyncio.create_task(body(*args))
        except BaseException as error:
            self._ledger.release(fd)
            raise error

    def _is_connected(self):
        return self._session.state == CONNECTED

    def _gone(self):
        """The error for a waiter whose connection ended: what killed the link."""
        if self._error is None:
            return LinkClosed("disconnected")
        return _typed(self._error)

    async def _until(self, ready, timeout_ms, what):
        """Wait until ready() holds; the connection ending raises, so does timeout_ms."""
        start = port.ticks_ms()
        generation = self._generation
        while not ready():
            if not self._live or self._generation != generation:
                raise self._gone()
            left = timeout_ms - port.ticks_diff(port.ticks_ms(), start)
            if left <= 0:
                raise Timeout(what, timeout_ms)
            event = self._progress
            event.clear()
            await _bounded(event.wait(), left, what)

    async def _send(self, packet):
        stream = self._stream
        if stream is None:
            raise LinkClosed("not connected")
        try:
            await _bounded(self._write(stream, packet), self.write_timeout_ms, "write")
        except LocalProtocolError as error:
            raise error
        except Exception as error:
            await self._lost(error)
            raise _typed(error)
        self._session.sent(port.ticks_ms())

    async def _write(self, stream, packet):
        async with self._lock:
            # PUBACKs due together come as a list: one hold of the lock keeps their order
            for one in packet if type(packet) is list else (packet,):
                head, rest = encode(one, self._tx)
                await stream.write(head)
                if rest:
                    await stream.write(rest)

    async def _read_loop(self, stream):
        decoder = self._decoder
        try:
            while not self._tearing:
                data = await stream.read(decoder.max_packet)
                if not data:
                    raise LinkClosed("closed by the broker")
                decoder.feed(data)
                data = None
                while True:
                    packet = decoder.next_packet()
                    if packet is None:
                        break
                    await self._handle(packet)
        except asyncio.CancelledError as error:
            raise error
        except Exception as error:
            await self._lost(error)

    async def _handle(self, packet):
        session = self._session
        reply, item = session.receive(packet)
        if item is not None:
            if isinstance(item, p.Publish):
                if not self._deliver(item) and item.qos == 1:
                    reply = session.ack(item.packet_id) or None
            elif item.fd is not None:
                self._ledger.release(item.fd)
                item.fd = None
        if packet.TYPE != p.PUBLISH:
            self._progress.set()  # CONNACK, an ack: a waiter may go on
        if reply is not None:
            await self._send(reply)

    def _deliver(self, message):
        """Hand a message to its callbacks; True when they hold its token, so its PUBACK
        waits for ack(token)."""
        topic = message.topic
        token = None
        if self.manual_ack and message.qos == 1:
            token = (self._generation & _GENERATIONS) << 16 | message.packet_id
        if isinstance(message, p.Skipped):
            self.oversized += 1
            self.last_oversized = (topic, message.size)
            return self.on_oversized is not None and self._call(
                self.on_oversized, topic, message.size, message.qos, token) and token is not None
        payload = bytes(message.payload)
        args = (topic, payload, message.qos, message.retain) + ((token,) if self.manual_ack else ())
        handled = False
        taken = True
        for sub in self._subs.values():
            if matches_levels(sub.levels, topic):
                handled = True
                taken = self._call(sub.callback, *args) and taken
        if not handled:
            if self.on_message is None:
                self.unhandled += 1
                return False
            taken = self._call(self.on_message, *args)
        return taken and token is not None

    def _call(self, callback, *args):
        """Run an application callback; False when it raised (counted, kept)."""
        try:
            callback(*args)
            return True
        except Exception as error:  # an application bug must not take the link down
            self.callback_errors += 1
            self.last_callback_error = error
            return False

    async def ack(self, token):
        """Acknowledge an incoming QoS 1 message that a manual_ack callback was given
        `token` for, once the application is done with it. PUBACKs go out in the order
        the messages came; a token of an ended connection is ignored (the broker sends
        that message again)."""
        if token is None or token >> 16 != self._generation & _GENERATIONS or not self._is_connected():
            return
        due = self._session.ack(token & 0xFFFF)
        if due:
            await self._send(due)

    async def _keepalive(self):
        session = self._session
        try:
            while not self._tearing:
                packet = session.poll(port.ticks_ms())
                if packet is not None:
                    await self._send(packet)
                await port.asleep_ms(session.next_poll_ms(port.ticks_ms()))
        except asyncio.CancelledError as error:
            raise error
        except Exception as error:
            await self._lost(error)

    # internals: teardown

    async def _lost(self, error):
        """The link failed (seen by any task): tear down unless that already runs."""
        if self._tearing or not self._live:
            return
        self._error = error
        if self._session.state in (CONNECTING, CONNECTED):
            self._session.fail()
        await self._teardown(graceful=False)

    async def _teardown(self, graceful):
        """End the connection: tasks, stream, ledger entries. Runs once; a second
        caller waits for the first. A cancellation on the way is re-raised at the end,
        after everything is released."""
        if self._tearing:
            generation = self._generation
            bound_ms = self.write_timeout_ms + 2 * self.close_timeout_ms
            while self._live and self._generation == generation:
                event = self._progress
                event.clear()
                await _bounded(event.wait(), bound_ms, "teardown")
            return
        self._tearing = True
        interrupted: BaseException | None = None
        current = asyncio.current_task()
        try:
            tasks = [task for task in (self._reader, self._pinger) if task is not None and task is not current]
            for task in tasks:
                task.cancel()
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
            self._release_all()
        if interrupted is not None:
            raise interrupted

    def _release_all(self):
        book = self._ledger
        for entry in self._session.inflight.values():
            if entry.fd is not None:
                book.release(entry.fd)
                entry.fd = None
        for sub in self._subs.values():
            book.release(sub.fd)
        self._subs.clear()
        for fd in (self._reader_fd, self._pinger_fd):
            if fd is not None:
                book.release(fd)
        self._reader_fd = self._pinger_fd = None
        self._reader = self._pinger = None
        self._stream = None
        self._live = False
        self._tearing = False
        try:
            self._session.end_connection()
        finally:
            self._progress.set()
