# The async client over the in-memory broker: connect, QoS flows both ways,
# subscriptions, refusals, the in-flight window, keepalive, and the ledger.
import asyncio

from cellmqtt.errors import LimitExceeded, LinkClosed, LocalProtocolError, MqttRefused, RemoteProtocolError
from cellmqtt.errors import StateError, SubscribeFailed, Timeout
from cellmqtt.ledger import INFLIGHT, SUBSCRIPTION, TASK, Ledger
from cellmqtt.mqtt import MqttClient, Will
from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt import server_codec as sc
from cellmqtt.mqtt.server_codec import encode
from modem_fakes import drive, framed, script_close, script_open, script_receive, script_send
from mqtt_fakes import FakeBroker, Peer, Streams, of_type
from support import caught, run, until


def _client(book, **options):
    options.setdefault("keepalive_s", 0)
    options.setdefault("ack_timeout_ms", 1000)
    options.setdefault("connect_timeout_ms", 1000)
    return MqttClient("dev-1", ledger=book, **options)


async def _connected(broker=None, chunk=None, **options):
    streams = Streams(chunk)
    book = Ledger()
    broker = broker or FakeBroker()
    client = _client(book, **options)
    open_stream = streams.opener(lambda: broker)
    await client.connect(await open_stream())
    return client, broker, streams, book


async def _finish(client, streams, book):
    await client.disconnect()
    await streams.settle()
    assert streams.open == 0
    assert len(book) == 0, book.entries()


def test_connect_publish_qos0_and_disconnect():
    async def main():
        client, broker, streams, book = await _connected()
        assert client.state == "connected"
        assert book.count(kind=TASK, owner="MQTT") == 1  # the reader; keepalive 0 has no pinger
        await client.publish("t/a", b"zero")
        await client.publish("t/a", "text")
        await _finish(client, streams, book)
        kinds = [packet.TYPE for packet in broker.received]
        assert kinds == [p.CONNECT, p.PUBLISH, p.PUBLISH, p.DISCONNECT]
        assert broker.received[0].client_id == "dev-1" and broker.received[0].clean_session
        assert broker.received[2].payload == b"text"
        assert client.state == "closed"

    run(main())


def test_connect_sends_will_and_credentials():
    async def main():
        client, broker, streams, book = await _connected(
            will=Will("dev/status", b"gone", 1, True), username="u", password=b"pw", keepalive_s=30)
        connect = broker.received[0]
        assert connect.will == Will("dev/status", b"gone", 1, True)
        assert (connect.username, connect.password, connect.keepalive_s) == ("u", b"pw", 30)
        assert book.count(kind=TASK) == 2  # reader and keepalive
        await _finish(client, streams, book)

    run(main())


def test_bad_will_or_client_id_fails_at_construction():
    error = None
    try:
        MqttClient("x", will=Will("a/#", b""))
    except LocalProtocolError as caught:
        error = caught
    assert error is not None and "wildcard" in str(error)
    try:
        MqttClient("", clean_session=False)
    except LocalProtocolError as caught:
        error = caught
    assert "empty client id" in str(error)


def test_every_refusal_code_is_typed_and_named_and_leaves_nothing():
    names = {1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
             4: "bad user name or password", 5: "not authorized"}

    async def main():
        for code in range(1, 6):
            streams = Streams()
            book = Ledger()
            client = _client(book)
            open_stream = streams.opener(lambda: FakeBroker(code=code))
            try:
                await client.connect(await open_stream())
                raise AssertionError("connect succeeded")
            except MqttRefused as error:
                assert error.code == code and error.name == names[code]
                assert names[code] in str(error)
            await streams.settle()
            assert streams.open == 0 and len(book) == 0
            assert client.state == "disconnected"
            await client.disconnect()
            assert client.state == "closed"

    run(main())


def test_broker_that_never_answers_connect_times_out():
    async def main():
        streams = Streams()
        book = Ledger()
        client = _client(book, connect_timeout_ms=100)
        stream, broker_end = streams.pair()
        try:
            await client.connect(stream)
            raise AssertionError("connected")
        except Timeout as error:
            assert error.what == "CONNACK"
        assert streams.open == 0 and len(book) == 0 and client.state == "disconnected"

    run(main())


def _by_hand(**options):
    """A client, its stream, and the broker's end of it driven by hand."""
    streams = Streams()
    book = Ledger()
    stream, broker_end = streams.pair()
    return _client(book, **options), stream, Peer(broker_end), streams, book


def test_first_packet_not_connack_is_a_protocol_error():
    async def main():
        client, stream, peer, streams, book = _by_hand()

        async def broker():
            await peer.expect(p.CONNECT)
            await peer.send(p.PINGRESP_PACKET)

        task = asyncio.create_task(broker())
        try:
            await client.connect(stream)
            raise AssertionError("connected")
        except RemoteProtocolError as error:
            assert "CONNACK" in str(error)
        await task
        assert streams.open == 0 and len(book) == 0

    run(main())


def test_connect_while_connected_is_refused_and_closes_the_new_stream():
    async def main():
        client, broker, streams, book = await _connected()
        extra, _ = streams.pair()
        try:
            await client.connect(extra)
            raise AssertionError("second connect accepted")
        except StateError as error:
            assert error.state == "connected"
        assert extra.closed and client.connected
        await _finish(client, streams, book)

    run(main())


def test_qos1_and_qos2_publish_wait_for_their_acks():
    async def main():
        client, broker, streams, book = await _connected(chunk=3)
        await client.publish("t/1", b"one", qos=1)
        await client.publish("t/2", b"two", qos=2, retain=True)
        assert book.count(kind=INFLIGHT) == 0
        kinds = [packet.TYPE for packet in broker.received[1:]]
        assert kinds == [p.PUBLISH, p.PUBLISH, p.PUBREL]
        second = broker.received[2]
        assert (second.qos, second.retain, second.dup) == (2, True, False)
        assert broker.received[3].packet_id == second.packet_id
        assert broker.received[1].packet_id != second.packet_id
        await _finish(client, streams, book)

    run(main())


def test_publish_ack_timeout_keeps_the_entry_until_disconnect():
    async def main():
        client, broker, streams, book = await _connected(FakeBroker(withhold=(p.PUBACK,)), ack_timeout_ms=60)
        try:
            await client.publish("t", b"x", qos=1)
            raise AssertionError("no timeout")
        except Timeout as error:
            assert error.what == "PUBACK"
        assert book.count(kind=INFLIGHT) == 1 and client.pending() == 1
        await _finish(client, streams, book)
        assert client.pending() == 0  # clean session: nothing kept

    run(main())


def test_publishes_without_waiting_go_out_in_order_and_are_acknowledged_in_any_order():
    async def main():
        client, broker, streams, book = await _connected(
            FakeBroker(withhold=(p.PUBACK, p.PUBREC, p.PUBCOMP)), inflight_window=3, ack_timeout_ms=200,
            window_timeout_ms=0)
        tickets = []
        for n in range(3):  # (no await in a comprehension under MicroPython)
            tickets.append(await client.publish("t", b"%d" % n, qos=1 + n % 2, wait=False))
        assert await client.publish("t", b"qos0", wait=False) is None
        await client.acked(None)  # QoS 0: nothing to wait for
        try:
            await client.publish("t", b"over", qos=1, wait=False)
            raise AssertionError("window not enforced")
        except LimitExceeded as error:
            assert error.limit == 3
        await until(lambda: len(of_type(broker.received, p.PUBLISH)) == 4)  # the broker reads them
        sent = of_type(broker.received, p.PUBLISH)
        assert [packet.payload for packet in sent] == [b"0", b"1", b"2", b"qos0"]
        assert [ticket.done for ticket in tickets] == [False, False, False]
        assert book.count(kind=INFLIGHT) == 3 and client.pending() == 3
        await broker.peer.send(p.Bare(p.PUBACK, sent[2].packet_id))  # the last one first
        await client.acked(tickets[2])
        assert [ticket.done for ticket in tickets] == [False, False, True]
        await broker.peer.send(p.Bare(p.PUBREC, sent[1].packet_id))  # QoS 2: PUBCOMP still due
        await broker.peer.send(p.Bare(p.PUBACK, sent[0].packet_id))
        await client.acked(tickets[0])
        try:
            await client.acked(tickets[1])
            raise AssertionError("no timeout")
        except Timeout as error:
            assert error.what == "PUBCOMP"
        assert client.pending() == 1  # a timeout leaves it in flight
        await broker.peer.send(p.Bare(p.PUBCOMP, sent[1].packet_id))
        await client.acked(tickets[1])
        await client.acked(tickets[1])  # done: returns at once
        assert book.count(kind=INFLIGHT) == 0
        await _finish(client, streams, book)

    run(main())


def test_publishes_follow_connect_before_the_connack():
    async def main():
        client, stream, broker, streams, book = _by_hand(keepalive_s=30)
        assert await client.connect(stream, wait=False) is None
        tickets = []
        for n in range(2):
            tickets.append(await client.publish("t", b"%d" % n, qos=1, wait=False))
        # ids taken and tracked before they were written [MQTT-3.1.4-5]
        assert book.count(kind=INFLIGHT) == 2 and client.state == "connecting"
        await broker.expect(p.CONNECT)
        sent = []
        for _ in tickets:  # (no await in a comprehension under MicroPython)
            sent.append(await broker.expect(p.PUBLISH))
        assert [packet.packet_id for packet in sent] == [ticket.packet_id for ticket in tickets]
        await broker.send(sc.Connack(False, 0))
        for packet in sent:
            await broker.send(p.Bare(p.PUBACK, packet.packet_id))
        assert await client.accepted() is False and client.connected
        assert book.count(kind=TASK) == 2  # the reader, and keepalive once CONNECTED
        for ticket in tickets:
            await client.acked(ticket)
        assert book.count(kind=INFLIGHT) == 0
        await client.disconnect()
        await broker.expect(p.DISCONNECT)
        assert len(book) == 0 and streams.open == 0

    run(main())


def test_a_refused_connack_fails_the_pipelined_publishes_and_holds_nothing():
    async def main():
        client, stream, broker, streams, book = _by_hand()
        await client.connect(stream, wait=False)
        ticket = await client.publish("t", b"r", qos=1, wait=False)
        await broker.expect(p.CONNECT)
        await broker.send(sc.Connack(False, 5))  # and reads nothing more [MQTT-3.1.4-5]
        for waiting in (client.accepted(), client.acked(ticket)):
            try:
                await waiting
                raise AssertionError("refused, yet accepted")
            except MqttRefused as error:
                assert error.code == 5
        assert not ticket.done and len(book) == 0 and streams.open == 0
        assert client.state == "disconnected"

    run(main())


def test_connect_and_the_first_publishes_leave_in_one_modem_send():
    # over a SIM7600 link: one AT+CIPSEND carries CONNECT and both PUBLISHes, one
    # AT+CIPRXGET the CONNACK and both PUBACKs
    def wire(*packets):
        return b"".join(bytes(piece) for packet in packets for piece in encode(packet))

    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883, owner="MQTT")
        client = _client(driver.ledger)
        publishes = [p.Publish("t", b"%d" % n, 1, False, False, n + 1) for n in range(2)]
        script_send(fake, 0, wire(p.Connect("dev-1", True, 0), *publishes))
        fake.push(framed(b"+CIPRXGET: 1,0"))
        script_receive(fake, 0, wire(sc.Connack(False, 0), p.Bare(p.PUBACK, 1), p.Bare(p.PUBACK, 2)))
        await client.connect(link, wait=False)
        tickets = []
        for publish in publishes:
            tickets.append(await client.publish(publish.topic, publish.payload, qos=1, wait=False))
        assert await client.accepted() is False
        for ticket in tickets:
            await client.acked(ticket)
        script_send(fake, 0, wire(p.DISCONNECT_PACKET))
        script_close(fake, 0)
        await client.disconnect()

    drive(body)


def test_a_ticket_of_a_lost_link_raises_what_ended_it():
    async def main():
        client, broker, streams, book = await _connected(FakeBroker(withhold=(p.PUBACK,)), ack_timeout_ms=2000)
        early = await client.publish("t", b"1", qos=1, wait=False)
        # (a task's exception nobody awaits yet is printed under MicroPython: caught() takes it)
        waiting = asyncio.create_task(caught(client.acked(early), LinkClosed))
        late = await client.publish("t", b"2", qos=1, wait=False)
        await asyncio.sleep(0.01)
        await broker.peer.close()
        await asyncio.wait_for(client.wait_disconnected(), 1)
        await waiting
        await caught(asyncio.wait_for(client.acked(late), 1), LinkClosed)
        assert not early.done and not late.done
        # a clean session drops them: after a new connect their tickets fail at once
        await client.connect(await streams.opener(lambda: broker)())
        try:
            await asyncio.wait_for(client.acked(late), 0.5)
            raise AssertionError("a dropped message acknowledged")
        except LinkClosed:
            pass
        await _finish(client, streams, book)

    run(main())


def test_full_window_waits_then_fails_with_limit_exceeded():
    async def main():
        client, broker, streams, book = await _connected(
            FakeBroker(withhold=(p.PUBACK,)), inflight_window=2, ack_timeout_ms=2000, window_timeout_ms=80)
        first = asyncio.create_task(client.publish("t", b"0", qos=1))
        second = asyncio.create_task(caught(client.publish("t", b"1", qos=1), LinkClosed))
        await until(lambda: book.count(kind=INFLIGHT) == 2)
        try:
            await client.publish("t", b"third", qos=1)
            raise AssertionError("window not enforced")
        except LimitExceeded as error:
            assert error.limit == 2
        # a PUBACK frees a slot: a waiting publish goes on
        waiting = asyncio.create_task(caught(client.publish("t", b"late", qos=1), LinkClosed))
        await asyncio.sleep(0.01)
        first_id = of_type(broker.received, p.PUBLISH)[0].packet_id
        await broker.peer.send(p.Bare(p.PUBACK, first_id))
        await asyncio.wait_for(first, 1)
        await until(lambda: len(of_type(broker.received, p.PUBLISH)) == 3)
        assert of_type(broker.received, p.PUBLISH)[2].payload == b"late"
        await _finish(client, streams, book)
        await second  # neither survived the disconnect
        await waiting

    run(main())


def test_window_without_waiting_fails_at_once():
    async def main():
        client, broker, streams, book = await _connected(
            FakeBroker(withhold=(p.PUBACK,)), inflight_window=1, window_timeout_ms=0)
        task = asyncio.create_task(caught(client.publish("t", b"1", qos=1), LinkClosed))
        await until(lambda: book.count(kind=INFLIGHT) == 1)
        try:
            await client.publish("t", b"2", qos=1)
            raise AssertionError("window not enforced")
        except LimitExceeded:
            pass
        await client.publish("t", b"qos0 needs no slot")
        await _finish(client, streams, book)
        await task

    run(main())


def test_subscribe_routes_to_every_matching_filter_and_unsubscribe():
    async def main():
        client, broker, streams, book = await _connected()
        got = []
        assert await client.subscribe("home/+/temp", 1, lambda *m: got.append(("plus",) + m)) == 1
        assert await client.subscribe("home/#", 2, lambda *m: got.append(("hash",) + m)) == 2
        assert book.count(kind=SUBSCRIPTION) == 2
        assert client.subscriptions() == {"home/+/temp": 1, "home/#": 2}
        await client.publish("home/kitchen/temp", b"21", qos=1)
        await broker.deliver("home/door", b"open", qos=2)
        await broker.deliver("other", b"no")
        await until(lambda: len(got) == 3 and client.unhandled == 1)
        assert ("plus", "home/kitchen/temp", b"21", 1, False) in got
        assert ("hash", "home/kitchen/temp", b"21", 1, False) in got
        assert ("hash", "home/door", b"open", 2, False) in got
        assert len(got) == 3 and client.unhandled == 1
        await client.unsubscribe("home/#")
        assert book.count(kind=SUBSCRIPTION) == 1 and "home/#" not in broker.subscriptions
        await _finish(client, streams, book)

    run(main())


def test_reads_ask_for_at_most_512_bytes_and_a_larger_message_arrives_whole():
    async def main():
        client, broker, streams, book = await _connected()
        stream = client._stream
        read = stream.read
        asked = []

        async def recorded_read(max_bytes):
            asked.append(max_bytes)
            return await read(max_bytes)

        stream.read = recorded_read  # each read of the reader task from now on
        got = []
        await client.subscribe("big", 1, lambda *m: got.append(m[1]))
        payload = bytes(range(256)) * 6
        await broker.deliver("big", payload, qos=1)
        await until(lambda: got)
        assert got == [payload]
        assert asked and max(asked) == 512  # a read's size is allocated in one block
        await _finish(client, streams, book)

    run(main())


def test_incoming_qos2_is_delivered_once_and_completed():
    async def main():
        client, broker, streams, book = await _connected()
        got = []
        await client.subscribe("q/#", 2, lambda *m: got.append(m))
        peer = broker.peer
        message = p.Publish("q/2", b"once", 2, False, False, 77)
        await peer.send(message)
        message.dup = True
        await peer.send(message)  # a resend before PUBREL: not delivered again
        await peer.send(p.Bare(p.PUBREL, 77))
        await until(lambda: of_type(broker.received, p.PUBCOMP))
        assert got == [("q/2", b"once", 2, False)]
        assert [packet.packet_id for packet in of_type(broker.received, p.PUBREC)] == [77, 77]
        assert of_type(broker.received, p.PUBCOMP)[0].packet_id == 77
        await _finish(client, streams, book)

    run(main())


def test_suback_failure_is_typed_and_leaves_no_handler():
    async def main():
        client, broker, streams, book = await _connected(FakeBroker(refuse=("secret/#",)))
        try:
            await client.subscribe("secret/#", 1, print)
            raise AssertionError("refusal not reported")
        except SubscribeFailed as error:
            assert error.topic_filter == "secret/#" and "0x80" in str(error)
        assert book.count(kind=SUBSCRIPTION) == 0 and book.count(kind=INFLIGHT) == 0
        assert await client.subscribe("open/#", 0, print) == 0
        await _finish(client, streams, book)

    run(main())


def test_dollar_topics_do_not_match_leading_wildcards():
    async def main():
        client, broker, streams, book = await _connected()
        got = []
        await client.subscribe("#", 0, lambda *m: got.append(("hash", m[0])))
        await client.subscribe("+/monitor/Clients", 0, lambda *m: got.append(("plus", m[0])))
        await client.subscribe("$SYS/#", 0, lambda *m: got.append(("sys", m[0])))
        await broker.deliver("$SYS/monitor/Clients", b"3")
        await broker.deliver("a/monitor/Clients", b"4")
        await until(lambda: len(got) == 3)
        assert sorted(got) == [("hash", "a/monitor/Clients"), ("plus", "a/monitor/Clients"),
                               ("sys", "$SYS/monitor/Clients")]
        await _finish(client, streams, book)

    run(main())


def test_callback_errors_are_counted_not_fatal():
    async def main():
        client, broker, streams, book = await _connected()

        def broken(topic, payload, qos, retain):
            raise ValueError("app bug")

        await client.subscribe("x", 1, broken)
        await broker.deliver("x", b"1", qos=1)
        await until(lambda: of_type(broker.received, p.PUBACK))
        assert client.callback_errors == 1 and isinstance(client.last_callback_error, ValueError)
        assert of_type(broker.received, p.PUBACK) and client.connected
        await _finish(client, streams, book)

    run(main())


def test_keepalive_pings_and_a_missing_pingresp_kills_the_link():
    async def main():
        client, broker, streams, book = await _connected(keepalive_s=1, ping_timeout_ms=150)
        await asyncio.sleep(1.1)
        assert len(of_type(broker.received, p.PINGREQ)) == 1 and client.connected
        broker.pingresp = False
        await asyncio.sleep(1.2)
        assert len(of_type(broker.received, p.PINGREQ)) == 2
        assert client.state == "disconnected"  # the link was declared dead, nothing reconnects
        assert streams.open == 0 and len(book) == 0
        try:
            await client.publish("t", b"x")
            raise AssertionError("published on a dead link")
        except StateError:
            pass
        await client.disconnect()
        assert client.state == "closed"
        await streams.settle()

    run(main())


def test_broker_closing_the_link_tears_everything_down():
    async def main():
        client, broker, streams, book = await _connected(keepalive_s=60)
        await client.subscribe("a", 1, print)
        await broker.peer.close()
        await asyncio.wait_for(client.wait_disconnected(), 1)
        assert client.state == "disconnected" and streams.open == 0 and len(book) == 0
        await client.disconnect()
        await client.disconnect()
        assert client.state == "closed"
        await streams.settle()

    run(main())


def _hang_writes(client):
    """From now on the client's stream takes writes and never returns (a stuck link)."""
    never = asyncio.Event()

    async def write(data):
        await never.wait()

    client._stream.write = write


def test_a_write_that_hangs_ends_at_write_timeout_ms_and_takes_the_connection():
    # an application's write, and the keepalive's PINGREQ, end at write_timeout_ms:
    # Timeout("write"), the link torn down, nothing held
    async def main():
        client, broker, streams, book = await _connected(write_timeout_ms=150, keepalive_s=1)
        _hang_writes(client)
        error = await caught(asyncio.wait_for(client.publish("t", b"x", qos=1), 2), Timeout)
        assert (error.what, error.timeout_ms) == ("write", 150)
        assert client.state == "disconnected" and len(book) == 0 and streams.open == 0
        await client.connect(await streams.opener(FakeBroker)())  # the client carries on
        _hang_writes(client)  # the PINGREQ due a second after CONNECT hangs
        await asyncio.wait_for(client.wait_disconnected(), 3)
        assert client.state == "disconnected" and len(book) == 0 and streams.open == 0
        await client.disconnect()
        await streams.settle()

    run(main())


def test_malformed_packet_from_broker_kills_only_that_connection():
    async def main():
        client, broker, streams, book = await _connected()
        await broker.peer.send_raw(b"\x40\x02\x00\x00")  # PUBACK with packet id 0
        await asyncio.wait_for(client.wait_disconnected(), 1)
        assert client.state == "disconnected" and len(book) == 0
        open_stream = streams.opener(FakeBroker)
        await client.connect(await open_stream())
        await client.publish("again", b"ok", qos=1)
        await _finish(client, streams, book)

    run(main())


def test_oversized_publish_from_broker_is_skipped_acknowledged_and_counted():
    async def main():
        seen = []
        client, broker, streams, book = await _connected(
            max_packet=64, chunk=50, on_oversized=lambda *args: seen.append(args))
        got = []
        await client.subscribe("big", 1, lambda *args: got.append(args))
        await broker.deliver("big", bytes(100), qos=1)  # also a retained one at subscribe time
        await broker.deliver("big", bytes(7000), qos=1, retain=True)
        await broker.deliver("big", b"small", qos=1)
        await until(lambda: len(of_type(broker.received, p.PUBACK)) == 3)
        assert got == [("big", b"small", 1, False)]
        assert seen == [("big", 109, 1, None), ("big", 7010, 1, None)]
        assert client.oversized == 2 and client.last_oversized == ("big", 7010)
        assert [ack.packet_id for ack in of_type(broker.received, p.PUBACK)] == [1, 2, 3]
        assert client.connected and len(book) == 2  # reader and subscription
        await client.publish("big", b"still up", qos=1)
        await _finish(client, streams, book)

    run(main())


def test_manual_ack_holds_pubacks_until_answered_and_keeps_their_order():
    async def main():
        taken = []
        client, broker, streams, book = await _connected(
            manual_ack=True, on_message=lambda *args: taken.append(args),
            on_oversized=lambda *args: taken.append(args), max_packet=64)
        for payload in (b"a", b"b", bytes(80), b"c"):
            await broker.deliver("cmd", payload, qos=1)
        await broker.deliver("cmd", b"q0")  # QoS 0: nothing to acknowledge
        await until(lambda: len(taken) == 5)
        tokens = [args[-1] for args in taken]
        assert [args[1] for args in taken] == [b"a", b"b", 89, b"c", b"q0"] and tokens[4] is None
        assert of_type(broker.received, p.PUBACK) == []
        await client.ack(tokens[1])
        await client.ack(tokens[3])
        assert of_type(broker.received, p.PUBACK) == []  # "a" came first and is open
        await client.ack(tokens[0])
        await until(lambda: len(of_type(broker.received, p.PUBACK)) == 2)
        assert [ack.packet_id for ack in of_type(broker.received, p.PUBACK)] == [1, 2]
        await client.ack(tokens[2])
        await client.ack(tokens[2])  # twice: nothing more
        await until(lambda: len(of_type(broker.received, p.PUBACK)) == 4)
        assert [ack.packet_id for ack in of_type(broker.received, p.PUBACK)] == [1, 2, 3, 4]
        await _finish(client, streams, book)
        await client.ack(tokens[0])  # after the connection: ignored

    run(main())


def test_a_token_of_an_ended_connection_acknowledges_nothing_on_the_next():
    async def main():
        taken = []
        broker = FakeBroker()
        streams = Streams()
        book = Ledger()
        client = _client(book, manual_ack=True, on_message=lambda *args: taken.append(args[-1]),
                         clean_session=False)
        open_stream = streams.opener(lambda: broker)
        await client.connect(await open_stream())
        await broker.deliver("cmd", b"x", qos=1)
        await until(lambda: len(taken) == 1)
        await client.disconnect()
        await client.connect(await open_stream())
        await broker.deliver("cmd", b"y", qos=1)  # packet id 2 on the new connection
        await until(lambda: len(taken) == 2)
        await client.ack(taken[0])
        await asyncio.sleep(0.02)
        assert of_type(broker.received, p.PUBACK) == []
        await client.ack(taken[1])
        await until(lambda: of_type(broker.received, p.PUBACK))
        assert [ack.packet_id for ack in of_type(broker.received, p.PUBACK)] == [2]
        await _finish(client, streams, book)

    run(main())


def test_large_publish_goes_out_in_pieces_without_a_copy():
    async def main():
        client, broker, streams, book = await _connected(send_buffer=64)
        payload = bytes(range(256)) * 4
        await client.publish("big/one", payload, qos=1)
        assert of_type(broker.received, p.PUBLISH)[0].payload == payload
        await _finish(client, streams, book)

    run(main())


def test_operations_need_a_connection():
    async def main():
        client = _client(Ledger())
        for action in (client.publish("t", b""), client.subscribe("t", 0, print), client.unsubscribe("t")):
            try:
                await action
                raise AssertionError("allowed while closed")
            except StateError as error:
                assert error.state == "closed"
        await client.disconnect()

    run(main())


def test_a_memory_error_that_ends_the_connection_reaches_its_waiters_as_itself():
    # not dressed as a lost link: the application can make room and try smaller (app.py
    # halves its batches after a MemoryError window)
    async def main():
        client, broker, streams, book = await _connected(FakeBroker(withhold=(p.PUBACK,)), ack_timeout_ms=2000)
        ticket = await client.publish("t", b"1", qos=1, wait=False)

        async def exhausted(max_bytes):
            raise MemoryError("memory allocation failed, allocating 512 bytes")

        client._stream.read = exhausted  # from the reader's next read on
        await broker.deliver("t", b"wakes the read in flight")
        try:
            await asyncio.wait_for(client.acked(ticket), 1)
            raise AssertionError("acknowledged over a dead link")
        except MemoryError as error:
            assert "allocating 512 bytes" in str(error)
        await _finish(client, streams, book)

    run(main())
