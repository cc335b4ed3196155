# The field report's two bugs, as regressions:
# (a) a disconnect during a reconnect, and a reconnect during a disconnect, held at
#     every stream operation in turn: afterwards no stream is open, the client is
#     disconnected and the ledger is empty;
# (b) subscriptions and QoS 1/2 traffic with acks outstanding leave no handler, no
#     in-flight entry and no retained memory after disconnect.
import asyncio

from cellmqtt.errors import LinkClosed, StateError
from cellmqtt.ledger import INFLIGHT, SUBSCRIPTION, Ledger
from cellmqtt.mqtt import MqttClient
from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt.robust import RobustClient
from mqtt_fakes import FakeBroker, Streams
from support import MICROPYTHON, retained_bytes, run, until

_HELD_WITHIN_S = 0.3  # an operation that is not reached by then does not exist


async def _robust_connected(streams, book):
    brokers = []

    def make():
        brokers.append(FakeBroker())
        return brokers[-1]

    client = MqttClient("dev", keepalive_s=0, connect_timeout_ms=500, ack_timeout_ms=500, ledger=book)
    robust = RobustClient(client, streams.opener(make), min_backoff_ms=1, max_backoff_ms=2,
                          random_below=lambda n: 0)
    await robust.subscribe("cmd/#", 1, lambda *m: None)
    robust.start()
    await robust.wait_connected(1000)
    return client, robust, brokers


async def _is_held(streams):
    try:
        await asyncio.wait_for(streams.held.wait(), _HELD_WITHIN_S)
        return True
    except asyncio.TimeoutError:
        streams.release()  # not reached: call it off, so no later operation is held
        return False


async def _assert_nothing_left(client, streams, book, opened_before=None):
    await streams.settle()
    where = "held at %s" % streams.held_op
    assert streams.open == 0, "%d stream(s) open, %s" % (streams.open, where)
    assert client.state == "closed", where
    assert len(book) == 0, (book.entries(), where)
    if opened_before is not None:
        await asyncio.sleep(0.01)  # the supervisor is gone: nothing opens later either
        assert streams.opened == opened_before


async def _disconnect_during_reconnect(hold, release_first):
    """Kill the link, hold the hold-th operation of what follows (teardown, backoff,
    open, CONNECT, CONNACK, SUBSCRIBE ...), disconnect there. False once the
    reconnect has fewer operations than that."""
    streams = Streams()
    book = Ledger()
    client, robust, brokers = await _robust_connected(streams, book)
    await brokers[-1].peer.close()  # no suspension: nothing else ran yet
    streams.hold(hold)
    held = await _is_held(streams)
    disconnecting = asyncio.create_task(robust.disconnect())
    if release_first:
        streams.release()
        await asyncio.sleep(0)
    else:
        await asyncio.sleep(0.005)
        streams.release()
    await asyncio.wait_for(disconnecting, 2)
    await _assert_nothing_left(client, streams, book, streams.opened)
    return held


def test_disconnect_during_reconnect_at_every_operation():
    async def main():
        for release_first in (False, True):
            hold = 1
            while await _disconnect_during_reconnect(hold, release_first):
                hold += 1
            assert hold > 10  # teardown, open, CONNECT, CONNACK, SUBSCRIBE, SUBACK ... were all held

    run(main())


async def _reconnect_during_disconnect(hold, via_robust):
    streams = Streams()
    book = Ledger()
    client, robust, brokers = await _robust_connected(streams, book)
    streams.hold(hold)
    disconnecting = asyncio.create_task(robust.disconnect() if via_robust else client.disconnect())
    held = await _is_held(streams)
    # while the disconnect is held: every way of connecting again is refused at once
    # (once it is over, the application may connect again, a reconnect policy may not)
    assert not client.may_reconnect()
    for reconnect in (True, False) if client.state == "disconnecting" else (True,):
        stream, _ = streams.pair()
        try:
            await client.connect(stream, reconnect)
            raise AssertionError("connected during a disconnect")
        except StateError as error:
            assert error.action in ("reconnect", "connect")
        assert stream.closed
    streams.release()
    await asyncio.wait_for(disconnecting, 2)
    if not via_robust:
        await robust.disconnect()  # the supervisor saw the client closed and stopped
        assert isinstance(robust.last_error, StateError) or robust.last_error is None
    await _assert_nothing_left(client, streams, book, streams.opened)
    return held


def test_reconnect_during_disconnect_at_every_operation():
    async def main():
        for via_robust in (True, False):
            hold = 1
            while await _reconnect_during_disconnect(hold, via_robust):
                hold += 1
            assert hold > 2  # at least the DISCONNECT write and the close were held

    run(main())


def test_disconnect_during_backoff_and_during_a_hanging_open():
    async def main():
        streams = Streams()
        book = Ledger()
        never = asyncio.Event()

        opening = []

        async def hanging_open():
            opening.append(True)
            await never.wait()

        client = MqttClient("dev", keepalive_s=0, ledger=book)
        robust = RobustClient(client, hanging_open, min_backoff_ms=5000, random_below=lambda n: 0)
        robust.start()
        await until(lambda: opening)  # inside the hanging open
        await asyncio.wait_for(robust.disconnect(), 1)
        assert client.state == "closed" and len(book) == 0
        failing = RobustClient(client, streams.opener(lambda: FakeBroker(code=3)), min_backoff_ms=5000,
                               random_below=lambda n: 0)
        failing.start()
        await until(lambda: failing.attempts == 1)  # refused once, now in a 2.5 s backoff
        assert failing.last_error.code == 3
        await asyncio.wait_for(failing.disconnect(), 1)
        await _assert_nothing_left(client, streams, book, 1)

    run(main())


def test_reconnects_after_link_loss_and_restores_subscriptions():
    async def main():
        streams = Streams()
        book = Ledger()
        client, robust, brokers = await _robust_connected(streams, book)
        await brokers[-1].peer.close()
        await until(lambda: robust.connections == 2 and "cmd/#" in brokers[-1].subscriptions)
        await robust.wait_connected(1000)
        assert len(brokers) == 2 and client.subscriptions() == {"cmd/#": 1}
        await robust.disconnect()
        await _assert_nothing_left(client, streams, book, 2)

    run(main())


def test_backoff_doubles_with_jitter_and_is_capped():
    client = MqttClient("dev")
    fixed = RobustClient(client, None, min_backoff_ms=1000, max_backoff_ms=8000, random_below=lambda n: n - 1)
    assert [fixed.backoff_ms(n) for n in (1, 2, 3, 4, 5, 60)] == [1000, 2000, 4000, 8000, 8000, 8000]
    low = RobustClient(client, None, min_backoff_ms=1000, max_backoff_ms=8000, random_below=lambda n: 0)
    assert [low.backoff_ms(n) for n in (1, 2, 4)] == [500, 1000, 4000]
    real = RobustClient(client, None, min_backoff_ms=1000, max_backoff_ms=8000)
    for _ in range(50):
        assert 4000 <= real.backoff_ms(9) <= 8000


# (b) nothing outlives a connection

def _handler(topic, payload, qos, retain):
    pass


async def _busy_cycle(client, book):
    streams = Streams()
    broker = FakeBroker(withhold=(p.PUBACK, p.PUBREC, p.PUBCOMP))
    await client.connect(await streams.opener(lambda: broker)())
    await client.subscribe("cmd/#", 1, _handler)
    await client.subscribe("cfg/+", 2, _handler)
    waiting = [asyncio.create_task(client.publish("t/1", b"reading", qos=1)),
               asyncio.create_task(client.publish("t/2", b"reading", qos=2))]
    await broker.peer.send(p.Publish("cfg/a", b"x", 2, False, False, 9))  # PUBREL never comes
    while book.count(kind=INFLIGHT) < 2:
        await asyncio.sleep(0)
    await asyncio.sleep(0.001)
    assert book.count(kind=SUBSCRIPTION) == 2
    await client.disconnect()
    for task in waiting:
        try:
            await task
            raise AssertionError("an unacknowledged publish completed")
        except LinkClosed:
            pass
    await streams.settle()
    assert streams.open == 0


def _cycler():
    book = Ledger()
    client = MqttClient("dev", keepalive_s=30, ack_timeout_ms=2000, ledger=book)

    def one_cycle():
        run(_busy_cycle(client, book))

    return client, book, one_cycle


def test_disconnect_with_acks_outstanding_leaves_nothing():
    client, book, one_cycle = _cycler()
    one_cycle()
    assert len(book) == 0 and client.subscriptions() == {}
    assert client.pending() == 0 and not client._session.incoming_qos2


def test_thousand_busy_cycles_retain_no_memory():
    client, book, one_cycle = _cycler()  # one client for all cycles, as on the device
    if MICROPYTHON:
        retained = retained_bytes(one_cycle, 1000)
        assert retained == 0, "%d bytes retained" % retained
    else:
        # tracemalloc also counts the interpreter's own caches, which settle in bursts:
        # the best of a few rounds shows what the cycles themselves keep
        retained = min(retained_bytes(one_cycle, 100) for _ in range(4))
        assert retained < 8192, "%d bytes retained" % retained
    assert len(book) == 0
