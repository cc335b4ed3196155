# Property tests of the MQTT codec and session (hypothesis, CPython only):
# whatever arrives, the decoder yields valid packets or RemoteProtocolError, never
# anything else, stays within its buffer, and keeps working after every packet;
# every packet we can build survives encode -> decode -> encode unchanged.
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellmqtt.errors import LimitExceeded, LocalProtocolError, MqttRefused, RemoteProtocolError
from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt.rare import Unsubscribe
from cellmqtt.mqtt import server_codec as sc
from cellmqtt.mqtt.server_codec import ServerDecoder as Decoder
from cellmqtt.mqtt.server_codec import encode
from cellmqtt.mqtt.session import FAIL, Session

MAX_PACKET = 512
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_char = st.characters(blacklist_characters="+#/\x00", blacklist_categories=("Cs",))
_level = st.text(_char, max_size=6)
topics = st.lists(_level, min_size=1, max_size=4).map("/".join).filter(bool)
_filter_level = st.one_of(_level, st.just("+"))
filters = st.builds(
    lambda levels, tail: "/".join(levels + (["#"] if tail else [])),
    st.lists(_filter_level, min_size=1, max_size=4), st.booleans()).filter(bool)
ids = st.integers(1, 65535)
qos = st.integers(0, 2)
blobs = st.binary(max_size=60)
names = st.text(_char, max_size=12)


def _publish(topic, payload, level, retain, dup, packet_id):
    if level == 0:
        return p.Publish(topic, payload, 0, retain)
    return p.Publish(topic, payload, level, retain, dup, packet_id)


def _connect(client_id, clean, keepalive, will, username, password):
    if not client_id:
        clean = True
    if username is None:
        password = None
    return p.Connect(client_id, clean, keepalive, will, username, password)


wills = st.none() | st.builds(p.Will, topics, blobs, qos, st.booleans())
packets = st.one_of(
    st.builds(_connect, names, st.booleans(), st.integers(0, 65535), wills, st.none() | names, st.none() | blobs),
    st.builds(lambda code, present: sc.Connack(present and not code, code), st.integers(0, 5), st.booleans()),
    st.builds(_publish, topics, blobs, qos, st.booleans(), st.booleans(), ids),
    st.builds(p.Bare, st.just(p.PUBACK), ids), st.builds(p.Bare, st.just(p.PUBREC), ids),
    st.builds(p.Bare, st.just(p.PUBREL), ids), st.builds(p.Bare, st.just(p.PUBCOMP), ids),
    st.builds(p.Subscribe, ids, st.lists(st.tuples(filters, qos), min_size=1, max_size=4)),
    st.builds(sc.Suback, ids, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1, max_size=4)),
    st.builds(Unsubscribe, ids, st.lists(filters, min_size=1, max_size=4)),
    st.builds(p.Bare, st.just(p.UNSUBACK), ids),
    st.sampled_from([p.PINGREQ_PACKET, p.PINGRESP_PACKET, p.DISCONNECT_PACKET]),
)


def _wire(packet):
    return b"".join(bytes(piece) for piece in encode(packet))


def _chunks(data, cuts):
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def _feed_all(decoder, pieces):
    """Decoded packets (payloads copied), or the RemoteProtocolError that ended it."""
    out = []
    for piece in pieces:
        decoder.feed(piece)
        while True:
            assert decoder._have <= decoder.max_packet
            packet = decoder.next_packet()
            if packet is None:
                break
            if packet.TYPE == p.PUBLISH:
                packet.payload = bytes(packet.payload)
            out.append(packet)
    return out


def _decode_or_reject(data, cuts):
    decoder = Decoder(MAX_PACKET)
    try:
        out = _feed_all(decoder, _chunks(data, cuts))
    except RemoteProtocolError:
        out = None
    buffer = decoder._buf  # made for the first split packet: never grows
    assert buffer is None or len(buffer) == MAX_PACKET
    for packet in out or ():
        # whatever was accepted is valid: we could send it ourselves, byte for byte
        _wire(packet)
    return out


@SETTINGS
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_random_bytes_give_packets_or_a_remote_protocol_error(data, cuts):
    _decode_or_reject(data, cuts)


@SETTINGS
@given(st.lists(packets, min_size=1, max_size=5), st.lists(st.integers(0, 10 ** 6), max_size=8),
       st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), min_size=1, max_size=4),
       st.sampled_from(["flip", "cut", "insert"]))
def test_mutated_packets_give_packets_or_a_remote_protocol_error(stream, cuts, edits, how):
    data = bytearray(b"".join(_wire(packet) for packet in stream))
    for where, value in edits:
        index = where % len(data)
        if how == "flip":
            data[index] ^= value or 1
        elif how == "cut":
            del data[index:]
            if not data:
                return
        else:
            data.insert(index, value)
    _decode_or_reject(bytes(data), cuts)


@SETTINGS
@given(st.lists(packets, min_size=1, max_size=6), st.lists(st.integers(0, 10 ** 6), max_size=10))
def test_round_trip_in_any_chunking(stream, cuts):
    wires = [_wire(packet) for packet in stream]
    data = b"".join(wires)
    decoder = Decoder(MAX_PACKET if max(map(len, wires)) <= MAX_PACKET else 4096)
    decoded = _feed_all(decoder, _chunks(data, cuts))
    assert decoded == stream
    assert [_wire(packet) for packet in decoded] == wires
    assert decoder.next_packet() is None


@SETTINGS
@given(st.lists(packets, min_size=1, max_size=4), st.binary(min_size=1, max_size=40))
def test_decoder_keeps_working_after_every_packet(stream, junk):
    decoder = Decoder(4096)
    for packet in stream:
        assert _feed_all(decoder, [_wire(packet)]) == [packet]
    # junk after good packets ends in an error at worst, never in a crash
    try:
        _feed_all(decoder, [junk])
    except RemoteProtocolError:
        decoder.reset()
        assert _feed_all(decoder, [_wire(stream[0])]) == [stream[0]]


_broker_packets = st.one_of(
    st.builds(_publish, topics, blobs, qos, st.booleans(), st.booleans(), st.integers(1, 6)),
    st.builds(p.Bare, st.just(p.PUBACK), st.integers(1, 6)), st.builds(p.Bare, st.just(p.PUBREC), st.integers(1, 6)),
    st.builds(p.Bare, st.just(p.PUBREL), st.integers(1, 6)), st.builds(p.Bare, st.just(p.PUBCOMP), st.integers(1, 6)),
    st.builds(sc.Suback, st.integers(1, 6), st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1, max_size=2)),
    st.builds(p.Bare, st.just(p.UNSUBACK), st.integers(1, 6)), st.just(p.PINGRESP_PACKET),
    st.builds(sc.Connack, st.booleans(), st.integers(0, 5)),
)
_actions = st.one_of(
    st.tuples(st.just("publish"), qos), st.tuples(st.just("subscribe"), qos),
    st.tuples(st.just("broker"), _broker_packets),
)


@SETTINGS
@given(st.lists(_actions, max_size=40), st.booleans())
def test_session_under_any_broker_behaviour(actions, clean):
    session = Session("dev", clean_session=clean, window=4, max_incoming_qos2=3)
    session.start(0)
    session.receive(sc.Connack(False, 0))
    for action, value in actions:
        if session.state != "connected":
            break
        try:
            if action == "publish":
                session.publish("t", b"x", value)
            elif action == "subscribe":
                session.subscribe([("t/#", value)])
            else:
                reply, item = session.receive(value)
                if reply is not None:
                    _wire(reply)  # every reply is a packet we may send
        except LimitExceeded:
            if action == "broker" and session.state == "connected":
                session.move(FAIL)  # too many QoS 2 messages held: the link goes
        except (RemoteProtocolError, MqttRefused):
            assert action == "broker"
            if session.state == "connected":
                session.move(FAIL)
        inflight = session.inflight
        assert len(inflight) <= 4 and len(session.incoming_qos2) <= 3
        assert all(1 <= packet_id <= 65535 and entry.packet_id == packet_id for packet_id, entry in inflight.items())
    if session.state == "connected":
        session.move(FAIL)
    session.end_connection()
    kept = session.inflight.values()
    assert all(entry.packet.TYPE == p.PUBLISH and entry.fd is None for entry in kept)
    assert clean is False or not kept


def test_strings_longer_than_65535_bytes_are_refused():
    # needs more heap than the MicroPython lane has
    for packet in (p.Connect("x" * 65536), p.Publish("t" * 65536, b""), p.Publish("\u00e9" * 32768, b"")):
        try:
            encode(packet)
            raise AssertionError("encoded")
        except LocalProtocolError as error:
            assert "longer than 65535 bytes" in str(error)
