# The conformance scenarios, written once and run against each real broker by the
# test_conformance_* modules. Each takes a Lab (tests/host/brokers.py) and must leave
# every client disconnected; the caller then checks that nothing is held.
import asyncio

from cellmqtt.errors import LinkClosed, LocalProtocolError, MqttRefused, SubscribeFailed, Timeout
from cellmqtt.mqtt import MqttClient, Will
from cellmqtt.mqtt import packets as p
from tests.host.brokers import WAIT_S, Inbox, SilentServer, connect_bytes, marker, raw_connack, until

DENIED = "secret/x"  # brokers under test refuse subscriptions to secret/#
WAIT_MS = WAIT_S * 1000


async def connect_disconnect(lab):
    """CONNACK without a session, a graceful DISCONNECT (no will published), idempotent."""
    observer = await lab.connected(lab.id("observer"))
    seen = Inbox()
    await observer.subscribe(lab.topic("#"), 1, seen)
    client = lab.client(lab.id("client"), will=Will(lab.topic("will"), b"gone", 1))
    present, tap = await lab.connect(client)
    assert present is False and client.connected
    await client.disconnect()
    assert tap.closed and client.state == "closed"
    await client.disconnect()
    await marker(lab, observer, seen)
    assert lab.topic("will") not in [message[0] for message in seen.messages]
    await observer.disconnect()


async def publish_receive(lab, qos, top_qos=2):
    """A message at `qos` reaches a subscriber granted top_qos (>= qos) at `qos`
    [MQTT-3.3.5-1] and a QoS 0 one at 0, byte for byte (1.5 KB: more than one write of
    the client's send buffer)."""
    full, low = Inbox(), Inbox()
    subscriber = await lab.connected(lab.id("full"))
    assert await subscriber.subscribe(lab.topic("q/#"), top_qos, full) == top_qos
    downgraded = await lab.connected(lab.id("low"))
    assert await downgraded.subscribe(lab.topic("q/#"), 0, low) == 0
    publisher = await lab.connected(lab.id("pub"))
    payload = bytes(range(256)) * 6
    await publisher.publish(lab.topic("q/x"), payload, qos=qos)
    assert publisher.pending() == 0
    assert await full.wait_for(payload) == (lab.topic("q/x"), payload, qos, False)
    assert await low.wait_for(payload) == (lab.topic("q/x"), payload, 0, False)
    await publisher.publish(lab.topic("q/empty"), b"", qos=qos)
    assert (await full.wait_for(b""))[0] == lab.topic("q/empty")
    for client in (publisher, downgraded, subscriber):
        await client.disconnect()


async def retained(lab):
    """A retained message goes to later subscribers with RETAIN set (live ones get it
    without [MQTT-3.3.1-9]); an empty retained message clears it."""
    live = Inbox()
    watcher = await lab.connected(lab.id("live"))
    await watcher.subscribe(lab.topic("r/#"), 1, live)
    publisher = await lab.connected(lab.id("pub"))
    await publisher.publish(lab.topic("r/state"), b"on", qos=1, retain=True)
    assert (await live.wait_for(b"on"))[3] is False
    late_box = Inbox()
    late = await lab.connected(lab.id("late"))
    await late.subscribe(lab.topic("r/#"), 1, late_box)
    assert await late_box.wait_for(b"on") == (lab.topic("r/state"), b"on", 1, True)
    await late.disconnect()
    await publisher.publish(lab.topic("r/state"), b"", qos=1, retain=True)
    await live.wait_for(b"")
    after_box = Inbox()
    after = await lab.connected(lab.id("after"))
    await after.subscribe(lab.topic("#"), 1, after_box)
    await marker(lab, publisher, after_box)
    assert [m for m in after_box.messages if m[0] == lab.topic("r/state")] == []
    for client in (after, publisher, watcher):
        await client.disconnect()


async def offline_queue(lab):
    """A persistent session keeps its subscription while away; QoS 1 and 2 messages
    wait at the broker and come after CONNACK with session present."""
    keeper = lab.client(lab.id("keeper"), clean_session=False)
    present, _ = await lab.connect(keeper)
    assert present is False
    await keeper.subscribe(lab.topic("queue/#"), 2, Inbox())
    await keeper.disconnect()
    publisher = await lab.connected(lab.id("pub"))
    await publisher.publish(lab.topic("queue/a"), b"one", qos=1)
    await publisher.publish(lab.topic("queue/b"), b"two", qos=2)
    backlog = Inbox()
    keeper.on_message = backlog  # no handler of ours exists yet: the broker's subscription
    present, _ = await lab.connect(keeper)
    assert present is True
    assert await backlog.wait_for(b"one") == (lab.topic("queue/a"), b"one", 1, False)
    assert await backlog.wait_for(b"two") == (lab.topic("queue/b"), b"two", 2, False)
    assert backlog.payloads() == [b"one", b"two"]
    await keeper.disconnect()
    await publisher.disconnect()


async def redelivery_outgoing(lab, qos, cut_after):
    """The link dies after our PUBLISH (or PUBREL) left, before the broker's answer:
    the persistent session sends it again, same id and DUP, on the next connection.
    QoS 2 reaches the subscriber exactly once; QoS 1 at least once."""
    seen = Inbox()
    watcher = await lab.connected(lab.id("watch"))
    await watcher.subscribe(lab.topic("#"), 2, seen)
    sender = lab.client(lab.id("sender"), clean_session=False)
    _, tap = await lab.connect(sender)
    tap.cut_after = (cut_after,)
    try:
        await sender.publish(lab.topic("out"), b"once", qos=qos)
        raise AssertionError("publish completed over a dead link")
    except LinkClosed:
        pass
    await sender.wait_disconnected(WAIT_MS)
    assert tap.closed and sender.state == "disconnected" and sender.pending() == 1
    present, again = await lab.connect(sender)
    assert present is True
    await until(lambda: sender.pending() == 0, "the resent message acknowledged")
    # Right after CONNECT the unfinished packet again, or a PUBREL if the broker's
    # PUBREC overtook the resend (amqtt sends it again at once); a PUBLISH with DUP.
    assert again.sent[1] in (cut_after, p.PUBREL), again.sent
    assert all(head & 0x08 for head in again.heads if head >> 4 == p.PUBLISH), again.heads
    await seen.wait_for(b"once")
    await marker(lab, sender, seen)
    copies = seen.payloads().count(b"once")
    assert copies == 1 if qos == 2 else copies >= 1, copies
    await sender.disconnect()
    await watcher.disconnect()


async def redelivery_incoming(lab, qos):
    """Our acknowledgement never leaves (the link dies): the broker sends the message
    again on the next connection. QoS 1 is delivered again; QoS 2 is answered with
    PUBREC from the held id and not delivered twice."""
    inbox = Inbox()
    keeper = lab.client(lab.id("keeper"), clean_session=False)
    keeper.on_message = inbox
    _, tap = await lab.connect(keeper)
    await keeper.subscribe(lab.topic("in/#"), qos, inbox)
    tap.cut_before = (p.PUBACK if qos == 1 else p.PUBREC,)
    publisher = await lab.connected(lab.id("pub"))
    await publisher.publish(lab.topic("in/x"), b"again", qos=qos)
    await inbox.wait_for(b"again")
    await keeper.wait_disconnected(WAIT_MS)
    assert tap.closed and keeper.state == "disconnected"
    present, again = await lab.connect(keeper)
    assert present is True
    if qos == 1:
        await until(lambda: inbox.payloads().count(b"again") == 2, "the message again")
    else:
        await until(lambda: p.PUBCOMP in again.sent, "PUBCOMP for the resent message")
        assert again.sent[1] == p.PUBREC
    await marker(lab, publisher, inbox, "in/marker")
    assert inbox.payloads().count(b"again") == (2 if qos == 1 else 1)
    await keeper.disconnect()
    await publisher.disconnect()


async def overlapping(lab):
    """Two filters match one topic: the message comes at the highest granted QoS
    [MQTT-3.3.5-1] (once, or once per subscription); after unsubscribing the narrow
    one it comes at the wide one's QoS."""
    wide, narrow = Inbox(), Inbox()
    client = await lab.connected(lab.id("client"))
    assert await client.subscribe(lab.topic("o/#"), 0, wide) == 0
    assert await client.subscribe(lab.topic("o/x"), 1, narrow) == 1
    publisher = await lab.connected(lab.id("pub"))
    await publisher.publish(lab.topic("o/x"), b"both", qos=1)
    await marker(lab, publisher, wide, "o/marker")
    copies = [m for m in narrow.messages if m[1] == b"both"]
    assert 1 <= len(copies) <= 2 and max(m[2] for m in copies) == 1, copies
    assert [m for m in wide.messages if m[1] == b"both"] == copies  # the client hands each copy to both
    await client.unsubscribe(lab.topic("o/x"))
    await publisher.publish(lab.topic("o/x"), b"wide only", qos=1)
    assert await wide.wait_for(b"wide only") == (lab.topic("o/x"), b"wide only", 0, False)
    assert b"wide only" not in narrow.payloads()
    await client.disconnect()
    await publisher.disconnect()


async def keepalive_will(lab, within_s):
    """A client that goes silent is dropped after 1.5 keepalive periods (as the broker
    checks them: within_s) and its will published; our side, whose own PINGRESP
    deadline is later, ends disconnected with its stream closed. (No other client of
    the broker may ping meanwhile: mosquitto 2.0.11 then often misses the expiry.)"""
    wills = Inbox()
    observer = await lab.connected(lab.id("observer"))
    await observer.subscribe(lab.topic("will"), 1, wills)
    client = lab.client(lab.id("silent"), keepalive_s=1, will=Will(lab.topic("will"), b"lost", 1),
                        ping_timeout_ms=int(within_s * 1000) + WAIT_MS)
    _, tap = await lab.connect(client)
    tap.silent = True
    assert await wills.wait_for(b"lost", within_s) == (lab.topic("will"), b"lost", 1, False)
    await client.wait_disconnected(WAIT_MS)
    assert tap.closed and client.state == "disconnected"
    assert p.PINGREQ in tap.swallowed
    await client.disconnect()
    await observer.disconnect()


async def keepalive_idle(lab, keepalive_s, idle_s):
    """An idle client pings once a keepalive period, whatever its PINGRESP deadline, so
    the broker never drops it [MQTT-3.1.2-23]; nothing else is sent meanwhile."""
    client = lab.client(lab.id("idle"), keepalive_s=keepalive_s)
    _, tap = await lab.connect(client)
    await asyncio.sleep(idle_s)
    assert client.connected, client.state
    pings = tap.sent.count(p.PINGREQ)
    assert pings >= idle_s // keepalive_s - 1, pings
    await client.publish(lab.topic("alive"), b"still here", qos=1)  # the broker still knows us
    await client.disconnect()


async def oversized_incoming(lab, size):
    """A message over the client's max_packet (a live one and a retained one at
    subscribe time) is read past, acknowledged, reported and counted; the connection
    carries on and the broker does not send it again on the next connection."""
    publisher = await lab.connected(lab.id("publisher"))
    await publisher.publish(lab.topic("big"), bytes(size), qos=1, retain=True)
    reports = []
    inbox = Inbox()
    client = lab.client(lab.id("small"), max_packet=256, clean_session=False, on_message=inbox,
                        on_oversized=lambda *args: reports.append(args))
    await lab.connect(client)
    await client.subscribe(lab.topic("big"), 1, inbox)
    await until(lambda: reports, "the retained oversized message")
    await publisher.publish(lab.topic("big"), bytes(size + 1), qos=1)
    await publisher.publish(lab.topic("big"), b"small", qos=1)
    await inbox.wait_for(b"small")
    assert [(topic, qos) for topic, _, qos, _ in reports] == [(lab.topic("big"), 1)] * 2, reports
    assert reports[1][1] == reports[0][1] + 1 and client.oversized == 2
    await client.disconnect()
    await lab.connect(client)
    await publisher.publish(lab.topic("big"), b"again", qos=1)
    await inbox.wait_for(b"again")
    assert client.oversized == 2  # acknowledged: not sent again
    await publisher.publish(lab.topic("big"), b"", qos=1, retain=True)  # clear the retained one
    await client.disconnect()
    await publisher.disconnect()


async def empty_client_id(lab):
    """A zero-length client id: accepted with clean session [MQTT-3.1.3-6]; with a
    persistent session our client refuses to send it, and the broker answers the
    hand-made CONNECT with code 2 [MQTT-3.1.3-8]."""
    client = lab.client("")
    present, _ = await lab.connect(client)
    assert present is False
    await client.publish(lab.topic("anonymous"), b"hi", qos=1)
    await client.disconnect()
    try:
        MqttClient("", clean_session=False)
        raise AssertionError("a persistent session without a client id was accepted")
    except LocalProtocolError:
        pass
    connack = await raw_connack(lab.address, connect_bytes("", False))
    assert (connack.TYPE, connack.session_present, connack.return_code) == (p.CONNACK, False, 2)


async def subscribe_refused(lab):
    """SUBACK 0x80 is a SubscribeFailed for that filter; the handler is gone, the other
    subscriptions and the connection stay."""
    inbox = Inbox()
    client = await lab.connected(lab.id("client"))
    assert await client.subscribe(lab.topic("ok"), 1, inbox) == 1
    try:
        await client.subscribe(DENIED, 1, Inbox())
        raise AssertionError("the broker granted %s" % DENIED)
    except SubscribeFailed as error:
        assert error.topic_filter == DENIED
    assert client.subscriptions() == {lab.topic("ok"): 1} and client.connected
    await client.publish(lab.topic("ok"), b"still up", qos=1)
    await inbox.wait_for(b"still up")
    await client.disconnect()


async def dollar_topics(lab):
    """$SYS topics reach "$SYS/#" but never "#" nor "+/..." [MQTT-4.7.2-1]."""
    everything, stray = Inbox(), Inbox()
    wide = lab.client(lab.id("wide"), on_message=stray)
    await lab.connect(wide)
    await wide.subscribe("#", 0, everything)
    await wide.subscribe("+/broker/#", 0, everything)
    system = Inbox()
    sys_client = await lab.connected(lab.id("sys"))
    await sys_client.subscribe("$SYS/#", 0, system)
    await until(lambda: system.messages, "a $SYS message", 3)
    await marker(lab, sys_client, everything)
    got = [m[0] for m in everything.messages + stray.messages if m[0].startswith("$")]
    assert got == [] and wide.unhandled == 0, got
    await wide.disconnect()
    await sys_client.disconnect()


async def unsubscribe(lab):
    """After UNSUBACK nothing comes for the filter and its handler is released;
    unsubscribing a filter never subscribed is still acknowledged [MQTT-3.10.4-5]."""
    gone, kept = Inbox(), Inbox()
    client = await lab.connected(lab.id("client"))
    await client.subscribe(lab.topic("u/a/#"), 1, gone)
    await client.subscribe(lab.topic("u/b"), 1, kept)
    await client.unsubscribe(lab.topic("u/a/#"))
    await client.unsubscribe(lab.topic("u/never"))
    assert client.subscriptions() == {lab.topic("u/b"): 1}
    publisher = await lab.connected(lab.id("pub"))
    await publisher.publish(lab.topic("u/a/x"), b"dropped", qos=1)
    await publisher.publish(lab.topic("u/b"), b"kept", qos=1)
    await kept.wait_for(b"kept")
    assert gone.messages == [] and client.unhandled == 0, (gone.messages, client.unhandled)
    await client.disconnect()
    await publisher.disconnect()


async def oversized(lab, size):
    """A broker that closes the link on a packet over its limit: the publish fails
    typed, the client is torn down, and a new connection works."""
    client = await lab.connected(lab.id("client"))
    try:
        await client.publish(lab.topic("big"), bytes(size), qos=1)
        raise AssertionError("a %d-byte publish went through" % size)
    except LinkClosed:
        pass
    await client.wait_disconnected(WAIT_MS)
    assert client.state == "disconnected"
    await lab.connect(client)
    await client.publish(lab.topic("small"), b"fits", qos=1)
    await client.disconnect()


async def refused(lab, code, client_id=None, **login):
    """CONNACK with a refusal: a typed MqttRefused with the code, the stream closed."""
    client = lab.client(lab.id("refused") if client_id is None else client_id, **login)
    tap = await lab.stream()
    try:
        await client.connect(tap)
        raise AssertionError("connected with %r" % (login,))
    except MqttRefused as error:
        assert error.code == code, error
    assert tap.closed and not client.connected


async def silent_broker(lab):
    """A server that accepts and never answers CONNECT: Timeout, the socket closed."""
    server = await SilentServer().start()
    try:
        client = lab.client(lab.id("client"), connect_timeout_ms=300)
        try:
            await lab.connect(client, server.address)
            raise AssertionError("connected to a silent server")
        except Timeout as error:
            assert error.what == "CONNACK"
        await server.wait_closed_by_client()
        assert server.accepted == 1 and client.state == "disconnected"
    finally:
        await server.stop()


async def restart_mid_session(lab, restart):
    """The broker restarts (`restart`: a blocking call) while a QoS 1 publish waits
    for its PUBACK: it fails with LinkClosed, everything is released, and a new
    connection works."""
    client = lab.client(lab.id("client"))
    _, client_tap = await lab.connect(client)
    client_tap.swallow = (p.PUBLISH,)  # the PUBACK never comes: the publish is in flight
    waiting = asyncio.ensure_future(client.publish(lab.topic("r"), b"in flight", qos=1))
    await until(lambda: p.PUBLISH in client_tap.swallowed, "the PUBLISH")
    await asyncio.get_running_loop().run_in_executor(None, restart)
    try:
        await waiting
        raise AssertionError("publish completed across a broker restart")
    except LinkClosed:
        pass
    await client.wait_disconnected(WAIT_MS)
    assert client_tap.closed and client.state == "disconnected" and lab.leftovers() == []
    inbox = Inbox()
    await lab.connect(client)
    await client.subscribe(lab.topic("r"), 1, inbox)
    await client.publish(lab.topic("r"), b"after", qos=1)
    await inbox.wait_for(b"after")
    await client.disconnect()
