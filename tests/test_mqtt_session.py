# The sans-IO session: packets and clock values in, packets out. No I/O, no waiting.
from cellmqtt.errors import ConfigError, LimitExceeded, LocalProtocolError, MqttRefused, RemoteProtocolError
from cellmqtt.errors import StateError, Timeout
from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt import server_codec as sc  # also: packets compare equal by their fields
from cellmqtt.mqtt import session as s
from cellmqtt.mqtt.rare import REFUSAL_NAMES
from cellmqtt.mqtt.session import Session
from support import raises


def _connected(now=0, **options):
    session = Session("dev", **options)
    session.start(now)
    assert session.receive(sc.Connack(False, 0)) == (None, None)
    assert session.state == s.CONNECTED
    return session


def test_state_table_allows_only_listed_moves():
    machine = Session("dev")  # its state table, moved by hand
    assert machine.state == s.CLOSED
    raises(StateError, machine.move, s.RECONNECT)  # never after the application's own disconnect
    raises(StateError, machine.move, s.ACCEPTED)
    assert machine.move(s.CONNECT) == s.CONNECTING
    raises(StateError, machine.move, s.CONNECT)
    assert machine.move(s.ACCEPTED) == s.CONNECTED
    assert machine.move(s.FAIL) == s.ERROR
    raises(StateError, machine.move, s.CONNECT)
    assert machine.move(s.DOWN) == s.DISCONNECTED
    assert machine.move(s.RECONNECT) == s.CONNECTING
    assert machine.move(s.DISCONNECT) == s.DISCONNECTING
    error = raises(StateError, machine.move, s.RECONNECT)
    assert (error.state, error.action) == (s.DISCONNECTING, s.RECONNECT)
    assert "cannot reconnect while disconnecting" in str(error)
    raises(StateError, machine.move, s.CONNECT)
    assert machine.move(s.DISCONNECT) == s.DISCONNECTING  # a second disconnect waits for the first
    assert machine.move(s.DOWN) == s.CLOSED
    assert machine.move(s.DISCONNECT) == s.CLOSED  # idempotent
    raises(StateError, machine.move, s.RECONNECT)


# every legal move: action -> {state: next state}; any other pair raises StateError
_MOVES = {
    s.CONNECT: {s.CLOSED: s.CONNECTING, s.DISCONNECTED: s.CONNECTING},
    s.RECONNECT: {s.DISCONNECTED: s.CONNECTING},
    s.ACCEPTED: {s.CONNECTING: s.CONNECTED},
    s.FAIL: {s.CONNECTING: s.ERROR, s.CONNECTED: s.ERROR, s.ERROR: s.ERROR, s.DISCONNECTING: s.DISCONNECTING},
    s.DISCONNECT: {s.CONNECTING: s.DISCONNECTING, s.CONNECTED: s.DISCONNECTING, s.ERROR: s.DISCONNECTING,
                   s.DISCONNECTING: s.DISCONNECTING, s.DISCONNECTED: s.CLOSED, s.CLOSED: s.CLOSED},
    s.DOWN: {s.ERROR: s.DISCONNECTED, s.DISCONNECTING: s.CLOSED},
}


def test_every_state_and_action_moves_as_listed_and_no_other():
    states = (s.CLOSED, s.CONNECTING, s.CONNECTED, s.DISCONNECTING, s.ERROR, s.DISCONNECTED)
    for action, moves in _MOVES.items():
        for state in states:
            machine = Session("dev")
            machine.state = state
            if state in moves:
                assert machine.move(action) == moves[state] == machine.state, (action, state)
            else:
                error = raises(StateError, machine.move, action)
                assert (error.state, error.action) == (state, action) and machine.state == state


def test_connect_packet_and_refusals():
    for code, name in enumerate(REFUSAL_NAMES):
        if not code:
            continue
        session = Session("dev", keepalive_s=30)
        assert session.start(0).keepalive_s == 30
        error = raises(MqttRefused, session.receive, sc.Connack(False, code))
        assert (error.code, error.name) == (code, name)
        assert session.state == s.ERROR


def test_first_packet_must_be_connack():
    session = Session("dev")
    session.start(0)
    raises(RemoteProtocolError, session.receive, p.Bare(p.PUBACK, 1))


def test_session_present_after_clean_session_is_a_protocol_error():
    session = Session("dev", clean_session=True)
    session.start(0)
    raises(RemoteProtocolError, session.receive, sc.Connack(True, 0))


def test_packet_ids_wrap_and_skip_ids_in_use():
    session = _connected(window=4)
    session._next_id = 65534
    ids = [session.publish("t", b"", 1)[0].packet_id for _ in range(3)]
    assert ids == [65534, 65535, 1]
    session.receive(p.Bare(p.PUBACK, 65535))
    session._next_id = 65534  # 65534 and 1 are still in flight: skipped
    assert session.publish("t", b"", 1)[0].packet_id == 65535
    session.receive(p.Bare(p.PUBACK, 65534))
    assert session.subscribe([("a", 0)])[0].packet_id == 2  # 1 is still in flight
    assert session.publish("t", b"", 1)[0].packet_id == 3
    assert sorted(session.inflight) == [1, 2, 3, 65535]
    raises(LimitExceeded, session.publish, "t", b"", 1)


def test_window_bounds_everything_waiting_for_an_ack():
    session = _connected(window=2)
    session.publish("t", b"", 1)
    session.unsubscribe(["x"])
    assert len(session.inflight) == session.window
    error = raises(LimitExceeded, session.subscribe, [("a", 0)])
    assert error.limit == 2
    packet, entry = session.publish("t", b"qos0 is not tracked", 0)
    assert entry is None and packet.packet_id is None
    raises(ConfigError, Session, "dev", window=0)


def test_outgoing_qos1_flow():
    session = _connected()
    packet, entry = session.publish("t", b"x", 1, retain=True)
    assert (packet.qos, packet.retain, packet.dup) == (1, True, False)
    assert session.receive(p.Bare(p.PUBACK, packet.packet_id)) == (None, entry)
    assert entry.done and not session.inflight
    assert session.receive(p.Bare(p.PUBACK, packet.packet_id)) == (None, None)  # a stray ack is ignored


def test_outgoing_qos2_flow():
    session = _connected()
    packet, entry = session.publish("t", b"x", 2)
    reply, item = session.receive(p.Bare(p.PUBREC, packet.packet_id))
    assert reply == p.Bare(p.PUBREL, packet.packet_id) and item is None and entry.released
    assert session.receive(p.Bare(p.PUBREC, packet.packet_id))[0] == p.Bare(p.PUBREL, packet.packet_id)  # resent PUBREC
    assert session.receive(p.Bare(p.PUBCOMP, packet.packet_id)) == (None, entry)
    assert entry.done and not session.inflight


def test_wrong_kind_of_ack_is_a_protocol_error():
    session = _connected()
    qos2, _ = session.publish("t", b"", 2)
    raises(RemoteProtocolError, session.receive, p.Bare(p.PUBCOMP, qos2.packet_id))  # before PUBREC
    raises(RemoteProtocolError, session.receive, p.Bare(p.PUBACK, qos2.packet_id))
    raises(RemoteProtocolError, session.receive, sc.Suback(qos2.packet_id, [0]))
    qos1, _ = session.publish("t", b"", 1)
    raises(RemoteProtocolError, session.receive, p.Bare(p.PUBREC, qos1.packet_id))
    sub, _ = session.subscribe([("a", 1), ("b", 2)])
    raises(RemoteProtocolError, session.receive, sc.Suback(sub.packet_id, [1]))
    raises(RemoteProtocolError, session.receive, sc.Suback(sub.packet_id, []))
    raises(RemoteProtocolError, session.receive, p.Bare(p.UNSUBACK, sub.packet_id))
    raises(RemoteProtocolError, session.receive, p.Subscribe(9, [("a", 0)]))
    raises(RemoteProtocolError, session.receive, p.PINGREQ_PACKET)
    raises(RemoteProtocolError, session.receive, sc.Connack(False, 0))


def test_subscribe_results():
    session = _connected()
    packet, entry = session.subscribe([("a/+", 1), ("b/#", 2)])
    assert session.receive(sc.Suback(packet.packet_id, [1, 0x80])) == (None, entry)
    assert entry.result == [1, 0x80]
    packet, entry = session.unsubscribe(["a/+"])
    assert session.receive(p.Bare(p.UNSUBACK, packet.packet_id)) == (None, entry)


def test_local_mistakes_are_local_protocol_errors():
    session = _connected()
    raises(LocalProtocolError, session.publish, "a/#", b"")
    raises(LocalProtocolError, session.publish, "a", b"", 3)
    raises(LocalProtocolError, session.subscribe, [("a/#/b", 0)])
    raises(LocalProtocolError, session.subscribe, [("a", 5)])
    raises(LocalProtocolError, session.unsubscribe, ["a+"])
    assert not session.inflight


def test_incoming_qos_flows_and_no_duplicate_delivery():
    session = _connected(max_incoming_qos2=2)
    message = p.Publish("t", b"0")
    assert session.receive(message) == (None, message)
    message = p.Publish("t", b"1", 1, False, False, 3)
    assert session.receive(message) == (None, message)
    assert session.ack(3) == [p.Bare(p.PUBACK, 3)]
    assert session.receive(message) == (None, message)  # QoS 1 is at least once
    assert session.ack(3) == [p.Bare(p.PUBACK, 3)] and session.ack(3) == ()
    message = p.Publish("t", b"2", 2, False, False, 4)
    assert session.receive(message) == (p.Bare(p.PUBREC, 4), message)
    message.dup = True
    assert session.receive(message) == (p.Bare(p.PUBREC, 4), None)  # held until PUBREL: not again
    assert session.receive(p.Bare(p.PUBREL, 4)) == (p.Bare(p.PUBCOMP, 4), None)
    assert session.receive(message) == (p.Bare(p.PUBREC, 4), message)  # after PUBREL it is a new message
    assert session.receive(p.Bare(p.PUBREL, 99)) == (p.Bare(p.PUBCOMP, 99), None)  # always answered
    session.receive(p.Publish("t", b"", 2, False, False, 5))
    error = raises(LimitExceeded, session.receive, p.Publish("t", b"", 2, False, False, 6))
    assert error.limit == 2


def test_pubacks_go_out_in_arrival_order_whoever_is_done_first():
    session = _connected()
    for packet_id in (7, 3, 9):
        message = p.Publish("t", b"x", 1, False, False, packet_id)
        assert session.receive(message) == (None, message)
    assert session.receive(p.Publish("t", b"x", 1, False, True, 3)) == (None, None)  # resent: once
    assert session.ack(9) == [] and session.ack(3) == []  # 7 came first and is still open
    assert session.ack(7) == [p.Bare(p.PUBACK, 7), p.Bare(p.PUBACK, 3), p.Bare(p.PUBACK, 9)]
    assert session.ack(7) == ()  # acknowledged already
    assert session.ack(42) == ()  # never received


def test_unacked_incoming_messages_are_bounded_and_forgotten_with_the_connection():
    session = _connected(clean_session=False, max_unacked=2)
    for packet_id in (1, 2, 3):
        session.receive(p.Publish("t", b"x", 1, False, False, packet_id))
    assert session.held_back == 1  # not delivered, not acknowledged: the broker sends it again
    assert session.ack(3) == ()
    assert session.ack(2) == [] and session.ack(1) == [p.Bare(p.PUBACK, 1), p.Bare(p.PUBACK, 2)]
    message = p.Publish("t", b"x", 1, False, False, 4)
    assert session.receive(message) == (None, None)  # after 3, never: acknowledged ones stay a prefix
    assert session.held_back == 2
    session.move(s.FAIL)
    session.end_connection()
    assert session.ack(1) == ()  # the broker sends it again after the next CONNACK
    session.start(0, reconnect=True)
    session.receive(sc.Connack(True, 0))
    message = p.Publish("t", b"x", 1, False, True, 1)
    assert session.receive(message) == (None, message)
    assert session.ack(1) == [p.Bare(p.PUBACK, 1)]


def test_an_oversized_publish_is_acknowledged_as_its_qos_requires():
    session = _connected()
    skipped = sc.Skipped("t", 99999, 1, False, False, 5)
    assert session.receive(skipped) == (None, skipped) and skipped.size == 99999
    assert session.ack(5) == [p.Bare(p.PUBACK, 5)]
    skipped = sc.Skipped("t", 99999, 2, False, False, 6)
    assert session.receive(skipped) == (p.Bare(p.PUBREC, 6), skipped)
    assert session.receive(skipped) == (p.Bare(p.PUBREC, 6), None)  # resent before PUBREL: reported once


def test_keepalive_pings_on_time_and_detects_a_dead_link():
    session = _connected(now=1000, keepalive_s=10, ping_timeout_ms=3000)
    assert session.poll(1000 + 9999) is None
    assert session.next_poll_ms(1000 + 9000) == 1000
    session.last_sent_ms = 5000  # any packet sent restarts the interval
    assert session.poll(11000) is None
    assert session.poll(15000) is p.PINGREQ_PACKET
    assert session.poll(15001) is None  # one PINGREQ at a time
    assert session.next_poll_ms(16000) == 2000
    assert session.receive(p.PINGRESP_PACKET) == (None, None)
    session.last_sent_ms = 15000
    assert session.poll(25000) is p.PINGREQ_PACKET
    error = raises(Timeout, session.poll, 28000)
    assert error.what == "PINGRESP" and error.timeout_ms == 3000


def _idle_ping_gaps(keepalive_s, answer_ms, run_ms, ping_timeout_ms=20000):
    """Drive poll()/next_poll_ms() as the keepalive task does on a scripted clock, a
    broker answering each PINGREQ after answer_ms: the gaps between PINGREQs."""
    session = _connected(keepalive_s=keepalive_s, ping_timeout_ms=ping_timeout_ms)
    now = 0
    sent = [0]  # CONNECT
    answers = []
    while now < run_ms:
        if answers and answers[0] <= now:
            answers.pop(0)
            session.receive(p.PINGRESP_PACKET)
        if session.poll(now) is p.PINGREQ_PACKET:
            session.last_sent_ms = now
            sent.append(now)
            answers.append(now + answer_ms)
        now += session.next_poll_ms(now)  # the task sleeps this long; a PINGRESP does not wake it
    return [later - earlier for earlier, later in zip(sent, sent[1:])]


def test_keepalive_holds_at_any_period():
    for keepalive_s in (1, 5, 13, 20, 60):
        gaps = _idle_ping_gaps(keepalive_s, answer_ms=1000, run_ms=600000)
        assert len(gaps) >= 600 // keepalive_s - 1, (keepalive_s, len(gaps))
        assert max(gaps) == keepalive_s * 1000, (keepalive_s, max(gaps))  # never late [MQTT-3.1.2-23]


def test_a_slow_pingresp_does_not_delay_the_next_pingreq():
    # PINGRESP takes longer than the keepalive: another PINGREQ is due all the same
    gaps = _idle_ping_gaps(2, answer_ms=3000, run_ms=60000, ping_timeout_ms=5000)
    assert max(gaps) == 2000 and min(gaps) == 2000


def test_next_poll_is_the_earlier_of_ping_and_pingresp_deadline():
    session = _connected(keepalive_s=5, ping_timeout_ms=20000)
    assert session.poll(5000) is p.PINGREQ_PACKET
    assert session.next_poll_ms(6000) == 4000  # the next PINGREQ, not the 20 s deadline
    session = _connected(keepalive_s=60, ping_timeout_ms=3000)
    assert session.poll(60000) is p.PINGREQ_PACKET
    assert session.next_poll_ms(61000) == 2000  # the deadline comes first
    error = raises(Timeout, session.poll, 63000)
    assert error.what == "PINGRESP"


def test_keepalive_across_a_wrapping_clock():
    period = 1 << 16

    def diff(end, start):
        return ((end - start + period // 2) % period) - period // 2

    session = Session("dev", keepalive_s=1, ticks_diff=diff)
    session.start(period - 300)
    session.receive(sc.Connack(False, 0))
    assert session.poll(500) is None  # 800 ms later, across the wrap
    assert session.poll(700) is p.PINGREQ_PACKET


def test_keepalive_zero_never_pings():
    session = _connected(keepalive_s=0)
    assert session.poll(10 ** 9) is None


def test_persistent_session_keeps_unacked_publishes_and_resends_them():
    session = _connected(clean_session=False)
    first, _ = session.publish("a", b"1", 1)
    second, _ = session.publish("b", b"2", 2)
    third, _ = session.publish("c", b"3", 2)
    session.receive(p.Bare(p.PUBREC, third.packet_id))  # third is in QoS 2's second phase
    session.subscribe([("x", 0)])
    session.receive(p.Publish("in", b"", 2, False, False, 8))
    session.move(s.DISCONNECT)
    session.end_connection()
    assert session.state == s.CLOSED
    assert sorted(session.inflight) == sorted([first.packet_id, second.packet_id, third.packet_id])
    assert 8 in session.incoming_qos2
    session.start(0)
    session.receive(sc.Connack(True, 0))
    resent = session.resend_packets()
    assert resent[0] is first and first.dup and resent[1] is second and second.dup
    assert resent[2] == p.Bare(p.PUBREL, third.packet_id)
    assert session.receive(p.Publish("in", b"", 2, True, True, 8)) == (p.Bare(p.PUBREC, 8), None)


def test_clean_session_forgets_everything():
    session = _connected()
    session.publish("a", b"1", 1)
    session.receive(p.Publish("in", b"", 2, False, False, 8))
    session.move(s.FAIL)
    session.end_connection()
    assert session.state == s.DISCONNECTED
    assert not session.inflight and not session.incoming_qos2
    assert session.resend_packets() == []


def test_operations_need_a_connection():
    session = Session("dev")
    raises(StateError, session.publish, "t", b"")
    raises(StateError, session.subscribe, [("t", 0)])
    session.start(0)
    # packets may follow CONNECT before its CONNACK [MQTT-3.1.4-5], their ids taken at once
    packet, entry = session.publish("t", b"", 1)
    subscribe, subscribed = session.subscribe([("c", 1)])
    assert session.inflight == {packet.packet_id: entry, subscribe.packet_id: subscribed}
    session.receive(sc.Connack(False, 0))
    assert session.receive(p.Bare(p.PUBACK, packet.packet_id)) == (None, entry) and entry.done
    session.move(s.FAIL)
    raises(StateError, session.publish, "t", b"")
