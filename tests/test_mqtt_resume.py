# Persistent sessions: unacknowledged messages survive a disconnect in the client's
# resume store (not in the ledger) and go out again with DUP and the same packet id.
from cellmqtt.errors import LinkClosed, Timeout
from cellmqtt.ledger import INFLIGHT, Ledger
from cellmqtt.mqtt import MqttClient
from cellmqtt.mqtt import packets as p
from mqtt_fakes import FakeBroker, Streams, of_type
from support import run, until


async def _expect_failure(task):
    try:
        await task
    except (Timeout, LinkClosed):
        return
    raise AssertionError("publish should not have completed")


async def _leave_three_unacked(client, broker):
    """QoS 1 without PUBACK, QoS 2 without PUBREC, QoS 2 with PUBREC but no PUBCOMP."""
    broker.withhold = (p.PUBACK, p.PUBREC)
    await _expect_failure(client.publish("r/1", b"one", qos=1))
    await _expect_failure(client.publish("r/2", b"two", qos=2))
    broker.withhold = (p.PUBCOMP,)
    await _expect_failure(client.publish("r/3", b"three", qos=2))
    return [packet.packet_id for packet in of_type(broker.received, p.PUBLISH)]


def test_resume_resends_with_dup_same_ids_and_pubrel_in_order():
    async def main():
        streams = Streams()
        book = Ledger()
        client = MqttClient("keeper", clean_session=False, keepalive_s=0, ack_timeout_ms=50, ledger=book)
        first = FakeBroker()
        await client.connect(await streams.opener(lambda: first)())
        ids = await _leave_three_unacked(client, first)
        assert len(set(ids)) == 3 and book.count(kind=INFLIGHT) == 3
        await client.disconnect()
        # kept for the next connection, but nothing in the ledger while disconnected
        assert client.pending() == 3 and len(book) == 0
        second = FakeBroker(session_present=True)
        present = await client.connect(await streams.opener(lambda: second)())
        assert present is True
        await until(lambda: client.pending() == 0)  # the second broker acknowledges everything
        resent = second.received[1:4]
        assert [packet.TYPE for packet in resent] == [p.PUBLISH, p.PUBLISH, p.PUBREL]
        assert [packet.packet_id for packet in resent] == ids
        assert resent[0].dup and resent[1].dup and resent[0].payload == b"one"
        assert resent[1].qos == 2 and resent[1].payload == b"two"
        assert book.count(kind=INFLIGHT) == 0  # the store emptied, and the ledger with it
        await client.disconnect()
        await streams.settle()
        assert streams.open == 0 and len(book) == 0

    run(main())


def test_resume_entries_are_live_in_the_ledger_while_connected():
    async def main():
        streams = Streams()
        book = Ledger()
        client = MqttClient("keeper", clean_session=False, keepalive_s=0, ack_timeout_ms=50, ledger=book)
        first = FakeBroker()
        await client.connect(await streams.opener(lambda: first)())
        await _leave_three_unacked(client, first)
        await client.disconnect()
        silent = FakeBroker(session_present=True, withhold=(p.PUBACK, p.PUBREC, p.PUBCOMP))
        await client.connect(await streams.opener(lambda: silent)())
        assert book.count(kind=INFLIGHT, owner="MQTT") == 3
        await client.disconnect()
        assert client.pending() == 3 and len(book) == 0
        await streams.settle()

    run(main())


def test_clean_session_drops_unacked_messages_at_disconnect():
    async def main():
        streams = Streams()
        book = Ledger()
        client = MqttClient("fresh", keepalive_s=0, ack_timeout_ms=50, ledger=book)
        broker = FakeBroker()
        await client.connect(await streams.opener(lambda: broker)())
        await _leave_three_unacked(client, broker)
        await client.disconnect()
        assert client.pending() == 0
        again = FakeBroker()
        await client.connect(await streams.opener(lambda: again)())
        assert [packet.TYPE for packet in again.received] == [p.CONNECT]
        await client.disconnect()
        await streams.settle()

    run(main())


def test_session_not_present_still_resends_and_forgets_held_qos2_ids():
    async def main():
        streams = Streams()
        book = Ledger()
        got = []
        client = MqttClient("keeper", clean_session=False, keepalive_s=0, ack_timeout_ms=50,
                            on_message=lambda *m: got.append(m), ledger=book)
        first = FakeBroker(withhold=(p.PUBACK,))
        await client.connect(await streams.opener(lambda: first)())
        await _expect_failure(client.publish("r/1", b"one", qos=1))
        await first.peer.send(p.Publish("in/2", b"a", 2, False, False, 5))  # no PUBREL follows
        await until(lambda: of_type(first.received, p.PUBREC))
        await client.disconnect()
        second = FakeBroker(session_present=False)
        assert not await client.connect(await streams.opener(lambda: second)())
        await until(lambda: of_type(second.received, p.PUBLISH))
        assert of_type(second.received, p.PUBLISH)[0].dup  # at least once, even to a fresh session
        # the broker lost its session: id 5 is new again and must be delivered
        await second.peer.send(p.Publish("in/2", b"b", 2, False, False, 5))
        await until(lambda: len(got) == 2)
        assert [message[1] for message in got] == [b"a", b"b"]
        await client.disconnect()
        await streams.settle()
        assert len(book) == 0

    run(main())
