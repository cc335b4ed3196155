"""The reconnect policy, for long-lived connections only (a duty cycle never uses it).

One supervisor task: open a stream, connect, (re)subscribe, wait for the link to
die, back off with jitter, and again. It yields to disconnect() at any moment:
disconnect() cancels the supervisor and awaits it (a connect in progress closes its
stream on the way out), then disconnects the client. Every attempt after the first
uses the client's `reconnect` action, which its state machine refuses once the
application has disconnected the client, and the supervisor asks may_reconnect()
before it opens a stream, so nothing reconnects behind the application's back.

open_stream is an async function returning a new Stream; if it is cancelled it
must not leave a stream open (port.open_tcp and the modem driver do not).
Disconnect through this object, not through its client, so a reconnect in
progress is cancelled before disconnect() returns.
"""

import asyncio

from .. import port
from .._const import const
from ..errors import LimitExceeded, StateError, SubscribeFailed, Timeout
from ..ledger import TASK
from .client import OWNER, _bounded, close_quietly

DEFAULT_MIN_BACKOFF_MS = const(1000)
DEFAULT_MAX_BACKOFF_MS = const(300000)  # 5 min: a cell outage can be long; the battery is not
DEFAULT_OPEN_TIMEOUT_MS = const(180000)  # AT+NETOPEN, then AT+CIPOPEN (their own bounds: modem/at.py)
_MAX_SHIFT = const(20)  # doubling stops long before this; it only keeps the int small


def _random_below(n):
    import random

    return random.getrandbits(30) % n


class RobustClient:
    """Keeps an MqttClient connected until disconnect(); subscriptions made through
    it are made again on every connection."""

    def __init__(self, client, open_stream, min_backoff_ms=DEFAULT_MIN_BACKOFF_MS,
                 max_backoff_ms=DEFAULT_MAX_BACKOFF_MS, open_timeout_ms=DEFAULT_OPEN_TIMEOUT_MS,
                 random_below=_random_below, ledger=None):
        self.client = client
        self._open_stream = open_stream
        self.min_backoff_ms = min_backoff_ms
        self.max_backoff_ms = max_backoff_ms
        self.open_timeout_ms = open_timeout_ms
        self._random_below = random_below
        self._ledger = client._ledger if ledger is None else ledger
        self._wanted = []  # (filter, qos, callback), bounded by the client's max_subscriptions
        self._task = None
        self._fd = None
        self._up: asyncio.Event = None  # type: ignore[assignment]  # made by start()
        self._stopping = False
        self.attempts = 0  # failed attempts since the last good connection
        self.connections = 0
        self.last_error = None

    def start(self):
        """Start the supervisor; its first attempt connects at once."""
        if self._task is not None:
            raise StateError("reconnect", "running", "start")
        self._stopping = False
        self.attempts = 0
        self._up = asyncio.Event()
        self._fd = self._ledger.acquire(TASK, OWNER, "reconnect")
        self._task = asyncio.create_task(self._supervise())

    async def disconnect(self):
        """Stop reconnecting and disconnect; nothing is open when it returns."""
        self._stopping = True
        task = self._task
        if task is not None:
            task.cancel()
        # Disconnecting the client also ends whatever the supervisor waits for, should
        # its cancellation get lost; from then on the client refuses to reconnect.
        await self.client.disconnect()
        if task is not None:
            while not task.done():
                try:
                    await task
                except BaseException:  # its cancellation, or what it died of
                    pass
            self._task = None
            self._ledger.release(self._fd)
            self._fd = None

    async def wait_connected(self, timeout_ms):
        """Return once the client is connected; Timeout after timeout_ms."""
        start = port.ticks_ms()
        while not self.client.connected:
            if self._task is None:
                raise StateError("reconnect", "stopped", "wait for a connection")
            left = timeout_ms - port.ticks_diff(port.ticks_ms(), start)
            if left <= 0:
                raise Timeout("connection", timeout_ms)
            await _bounded(self._up.wait(), left, "connection")

    async def subscribe(self, topic_filter, qos, callback):
        """Remember the subscription for every connection; subscribe now if connected
        (returns the granted QoS then, else None)."""
        wanted = self._wanted
        for index in range(len(wanted)):
            if wanted[index][0] == topic_filter:
                wanted[index] = (topic_filter, qos, callback)
                break
        else:
            if len(wanted) >= self.client.max_subscriptions:
                raise LimitExceeded("subscriptions", self.client.max_subscriptions)
            wanted.append((topic_filter, qos, callback))
        if self.client.connected:
            return await self.client.subscribe(topic_filter, qos, callback)
        return None

    async def unsubscribe(self, topic_filter):
        self._wanted = [item for item in self._wanted if item[0] != topic_filter]
        if self.client.connected:
            await self.client.unsubscribe(topic_filter)

    def backoff_ms(self, attempt):
        """The pause before retry number `attempt` (1, 2 ...): doubling from
        min_backoff_ms up to max_backoff_ms, half of it random ("equal jitter") so a
        fleet does not retry in step."""
        delay = self.min_backoff_ms << min(attempt - 1, _MAX_SHIFT)
        if delay > self.max_backoff_ms:
            delay = self.max_backoff_ms
        half = delay // 2
        return half + self._random_below(half + 1)

    async def _open(self):
        """open_stream(), bounded, in a task of its own that is always awaited: a
        stream it produced after we gave up (timeout, cancellation) is closed, never
        lost (wait_for around it would drop or keep it depending on the runtime)."""
        finished = asyncio.Event()
        fd = self._ledger.acquire(TASK, OWNER, "open stream")
        opener = asyncio.create_task(self._opening(finished))
        try:
            await _bounded(finished.wait(), self.open_timeout_ms, "open stream")
            return await opener  # done already: no suspension, nothing can come between
        except BaseException as error:
            stream = None
            opener.cancel()
            try:
                stream = await opener
            except BaseException:  # its cancellation or failure: nothing was produced
                pass
            if stream is not None:
                await close_quietly(stream)
            raise error
        finally:
            self._ledger.release(fd)

    async def _opening(self, finished):
        try:
            return await self._open_stream()
        finally:
            finished.set()

    async def _supervise(self):
        first = True
        while not self._stopping:
            if self.attempts:
                await port.asleep_ms(self.backoff_ms(self.attempts))
            if not first and not self.client.may_reconnect():
                return  # the application disconnected the client itself
            try:
                await self._connect_once(reconnect=not first)
            except StateError as error:
                self.last_error = error  # the application disconnected meanwhile
                return
            except Exception as error:  # what the link or the broker did: try again later
                self.last_error = error
                self.attempts += 1
                await self.client.abort()
            first = False

    async def _connect_once(self, reconnect):
        stream = await self._open()
        if self._stopping:  # disconnect() came while the stream opened
            await close_quietly(stream)
            return
        await self.client.connect(stream, reconnect)  # owns the stream from here on
        self.attempts = 0
        self.connections += 1
        for topic_filter, qos, callback in list(self._wanted):
            try:
                await self.client.subscribe(topic_filter, qos, callback)
            except SubscribeFailed as error:
                self.last_error = error  # the broker's answer: reconnecting would not change it
        self._up.set()
        try:
            await self.client.wait_disconnected()
        finally:
            self._up.clear()
        self.attempts = 1  # a link that keeps dropping at once is not redialled in a tight loop
