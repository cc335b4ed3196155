"""`python -m tools.fleet collect`: the boards' data, health and status messages into
the database, each acknowledged to the broker only once committed.

The project's own MQTT client subscribes with QoS 1 on a persistent session
(clean_session off) and manual acknowledgement: a message's PUBACK waits for its
token, given back after the transaction that stored it (or its reject) committed. A
collector killed at any instant leaves the broker holding every message it had not
committed; they come again on its next connection and are stored once (readings by
(device, seq), health and status by content). Messages that came while the client
held `max_unacked` unacknowledged ones are not delivered on that connection
(held_back): once the backlog is committed the collector connects again to get them.
"""

import asyncio
import signal
import time

from cellmqtt import port
from cellmqtt.errors import CellMqttError, SubscribeFailed
from cellmqtt.ledger import Ledger
from cellmqtt.mqtt import MqttClient

from . import messages
from .db import DatabaseError, open_db

RETRY_MIN_S = 0.5  # between connection attempts, doubling
RETRY_MAX_S = 10


class Stats:
    def __init__(self):
        self.messages = self.readings = self.duplicates = self.conflicts = self.rejects = 0
        self.commits = 0
        self.connections = 0

    def line(self):
        return ("%d messages, %d readings stored, %d duplicates, %d conflicts, %d rejects, "
                "%d commits, %d connections") % (self.messages, self.readings, self.duplicates,
                                                  self.conflicts, self.rejects, self.commits, self.connections)


class Collector:
    def __init__(self, db, routes, broker, client_id, share=None, keepalive_s=60, max_packet=256 * 1024,
                 max_unacked=1000, batch=500, log=print):
        self.db = db
        self.routes = routes
        self.broker = broker
        self.client_id = client_id
        self.filters = ["$share/%s/%s" % (share, f) if share else f for f in routes.filters]
        self.keepalive_s = keepalive_s
        self.max_packet = max_packet
        self.max_unacked = max_unacked
        self.batch = batch
        self.log = log
        self.stats = Stats()
        self._inbox = []  # (topic, payload or None when oversized, size, token, received_at)
        self._arrived = asyncio.Event()
        self._stop = asyncio.Event()

    def stop(self):
        self._stop.set()

    # arrivals (the client's reader task: no waiting here)

    def _on_message(self, topic, payload, qos, retain, token):
        inbox = self._inbox
        if token is not None and inbox and inbox[-1][3] == token:
            return  # a second filter matching the same message: it is stored once
        inbox.append((topic, payload, len(payload), token, time.time()))
        self._arrived.set()

    def _on_oversized(self, topic, size, qos, token):
        self._inbox.append((topic, None, size, token, time.time()))
        self._arrived.set()

    # the loop

    async def run(self):
        """Connect, store, acknowledge; connect again after a lost link (backing off)
        or a held-back backlog; until stop(). DatabaseError ends it (nothing is
        acknowledged that was not committed), and so does a refused subscription."""
        retry_s = RETRY_MIN_S
        while not self._stop.is_set():
            client = MqttClient(self.client_id, keepalive_s=self.keepalive_s, clean_session=False,
                                manual_ack=True, max_unacked=self.max_unacked, max_packet=self.max_packet,
                                on_message=self._on_message, on_oversized=self._on_oversized, ledger=Ledger())
            try:
                await self._session(client)
                retry_s = RETRY_MIN_S
            except SubscribeFailed:
                raise  # the broker will not give us these topics: trying again changes nothing
            except (CellMqttError, OSError) as error:
                self.log("collect: broker %s: %s; again in %.1f s" % (self.broker, error, retry_s))
                try:
                    await asyncio.wait_for(self._stop.wait(), retry_s)
                except asyncio.TimeoutError:
                    pass
                retry_s = min(retry_s * 2, RETRY_MAX_S)
            finally:
                await client.disconnect()
                self._inbox.clear()  # tokens of that connection are void: the broker sends these again

    async def _session(self, client):
        stream = await port.open_tcp(self.broker)
        present = await client.connect(stream)
        self.stats.connections += 1
        for topic_filter in self.filters:
            await client.subscribe(topic_filter, 1, self._on_message)
        self.log("collect: connected to %s as %r (session present: %s), subscribed to %s" % (
            self.broker, self.client_id, "yes" if present else "no", ", ".join(self.filters)))
        stopping = asyncio.ensure_future(self._stop.wait())
        lost = asyncio.ensure_future(client.wait_disconnected())
        try:
            while True:
                if not self._inbox:
                    self._arrived.clear()
                    arrived = asyncio.ensure_future(self._arrived.wait())
                    await asyncio.wait([arrived, stopping, lost], return_when=asyncio.FIRST_COMPLETED)
                    arrived.cancel()
                if self._inbox:
                    await self._commit(client)
                    if client.held_back and not self._inbox:
                        self.log("collect: %d messages held back at the broker; connecting again" % client.held_back)
                        return
                elif stopping.done():
                    return
                elif lost.done():
                    raise OSError("connection to the broker lost")
        finally:
            for waiter in (stopping, lost):
                waiter.cancel()

    async def _commit(self, client):
        """Store a batch of arrivals in one transaction, then acknowledge them in order."""
        batch = self._inbox[:self.batch]
        del self._inbox[:self.batch]
        with self.db.transaction():
            for topic, payload, size, _, received_at in batch:
                self._store(topic, payload, size, received_at)
        self.stats.commits += 1
        for item in batch:
            await client.ack(item[3])

    def _store(self, topic, payload, size, received_at):
        self.stats.messages += 1
        db = self.db
        try:
            if payload is None:
                raise messages.Reject("oversized: %d bytes, over the packet limit of %d" % (size, self.max_packet))
            kind, named = self.routes.route(topic)
            if kind == "data":
                device, readings = messages.data(payload, named)
                new, duplicates, conflicts = db.store_readings(device, readings, received_at)
                self.stats.readings += new
                self.stats.duplicates += duplicates
                self.stats.conflicts += conflicts
            elif kind == "health":
                device, fields = messages.health(payload, named)
                db.store_health(device, payload, fields, received_at)
            else:
                db.store_status(messages.status(payload, named), payload, received_at)
        except messages.Reject as reason:
            self.stats.rejects += 1
            db.store_reject(topic, str(reason), size, payload, received_at)


async def _main(collector, log):
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, collector.stop)
    try:
        await collector.run()
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


def run(args, routes, log=print):
    """The collect command; returns its exit status."""
    try:
        db = open_db(args.db)
    except DatabaseError as error:
        log("collect: database %s" % error)
        return 1
    collector = Collector(db, routes, args.broker, args.client_id,
                          share=args.share, max_packet=args.max_packet, max_unacked=args.max_unacked, log=log)
    try:
        asyncio.run(_main(collector, log))
    except DatabaseError as error:
        log("collect: database %s" % error)
        return 1
    except SubscribeFailed as error:
        log("collect: the broker refused the subscription to %s" % error.topic_filter)
        return 1
    finally:
        db.close()
        log("collect: " + collector.stats.line())
    return 0
