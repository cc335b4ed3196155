# What the MQTT decoder's property tests (test_mqtt_props.py) leave out: the size bound
# is applied before anything is buffered (a remaining length above max_packet fails as
# soon as its last length byte is in, with at most the fixed header held; a PUBLISH
# that large is read past, max_packet bytes of it kept, and what follows decodes), a failed
# decoder stays failed until reset() and then works again, and a long stream of
# packets leaves no memory behind (tracemalloc).
import gc
import random
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellmqtt.errors import RemoteProtocolError
from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt import server_codec as sc
from cellmqtt.mqtt.packets import MIN_MAX_PACKET
from cellmqtt.mqtt.server_codec import ServerDecoder as Decoder
from cellmqtt.mqtt.server_codec import encode

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_REMAINING = 268435455  # 4 length bytes [MQTT-2.2.3]
# a valid first byte for each packet type (PUBLISH: QoS 0-2, with and without retain)
FIRST_BYTES = [0x10, 0x20, 0x30, 0x31, 0x32, 0x3B, 0x34, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xA2, 0xB0,
               0xC0, 0xD0, 0xE0]
NOT_PUBLISH = [first for first in FIRST_BYTES if first >> 4 != p.PUBLISH]


def _length_bytes(value):
    out = bytearray()
    while True:
        byte = value & 127
        value >>= 7
        out.append(byte | 128 if value else byte)
        if not value:
            return bytes(out)


def _wire(packet):
    return b"".join(bytes(piece) for piece in encode(packet))


_topic = st.text(st.sampled_from("abc/xyz09"), min_size=1, max_size=20)
_ids = st.integers(1, 65535)
_packets = st.one_of(
    st.builds(lambda t, d: p.Publish(t, d), _topic, st.binary(max_size=80)),
    st.builds(lambda t, d, q, i: p.Publish(t, d, q, False, False, i), _topic, st.binary(max_size=80),
              st.integers(1, 2), _ids),
    st.builds(p.Bare, st.just(p.PUBACK), _ids), st.builds(p.Bare, st.just(p.PUBREC), _ids),
    st.builds(p.Bare, st.just(p.PUBREL), _ids), st.builds(p.Bare, st.just(p.PUBCOMP), _ids),
    st.builds(sc.Suback, _ids, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1, max_size=3)),
    st.builds(p.Bare, st.just(p.UNSUBACK), _ids), st.builds(sc.Connack, st.just(False), st.integers(0, 5)),
    st.just(p.PINGRESP_PACKET),
)


def _copy(packet):
    if type(packet) is p.Publish and packet.payload is not None:  # None: one over max_packet
        packet.payload = bytes(packet.payload)
    return packet


def _step(decoder, data):
    """Feed one piece and drain; every packet is copied. Checks the bounds on the way:
    the buffer, once made, is never replaced, and while a packet's size is unknown only
    its fixed header (at most 5 bytes) is held."""
    buffer = decoder._buf
    out = []
    decoder.feed(data)
    while True:
        packet = decoder.next_packet()
        if buffer is None:
            buffer = decoder._buf
        assert decoder._buf is buffer and (buffer is None or len(buffer) == decoder.max_packet)
        assert decoder._have <= decoder.max_packet
        assert decoder._size or decoder._have <= 5
        if packet is None:
            return out
        out.append(_copy(packet))


@SETTINGS
@given(_topic, st.integers(0, 2), _ids, st.booleans(), st.integers(MIN_MAX_PACKET + 24, 512), st.data(),
       st.lists(_packets, max_size=3), st.lists(_packets, max_size=3))
def test_an_oversized_publish_is_read_past_whatever_the_pieces(topic, qos, packet_id, retain, max_packet, data,
                                                               before, after):
    payload = data.draw(st.binary(min_size=max_packet, max_size=3 * max_packet), "payload")
    big = p.Publish(topic, payload, qos, retain, False, packet_id if qos else None)
    fits = [packet for packet in before + after if len(_wire(packet)) <= max_packet]
    good_before = [packet for packet in before if packet in fits]
    good_after = [packet for packet in after if packet in fits]
    wire = b"".join(_wire(packet) for packet in good_before) + _wire(big)
    wire += b"".join(_wire(packet) for packet in good_after)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(wire) - 1), max_size=12), "cuts")))
    decoder = Decoder(max_packet)
    got = []
    for start, end in zip([0] + cuts, cuts + [len(wire)]):
        got.extend(_step(decoder, wire[start:end]))
    skipped = sc.Skipped(topic, len(_wire(big)), qos, retain, False, packet_id if qos else None)
    assert got == good_before + [skipped] + good_after


@SETTINGS
@given(st.sampled_from(NOT_PUBLISH), st.integers(MIN_MAX_PACKET, 4096), st.data(),
       st.lists(_packets, max_size=3), st.booleans())
def test_a_length_above_max_packet_fails_once_its_length_bytes_are_in(first, max_packet, data, before, whole):
    remaining = data.draw(st.integers(max_packet, MAX_REMAINING), "remaining")
    header = bytes([first]) + _length_bytes(remaining)
    good = [packet for packet in before if len(_wire(packet)) <= max_packet]
    lead = b"".join(_wire(packet) for packet in good)
    decoder = Decoder(max_packet)
    body = bytes(range(256)) * 4  # part of the announced body: it must never be buffered
    if whole:
        decoder.feed(lead + header + body)
        for packet in good:
            assert _copy(decoder.next_packet()) == packet
    else:
        assert [packet for byte in lead for packet in _step(decoder, bytes([byte]))] == good
        for byte in header[:-1]:
            assert _step(decoder, bytes([byte])) == []
        decoder.feed(header[-1:])
    try:
        decoder.next_packet()
        raise AssertionError("a %d-byte remaining length passed max_packet %d" % (remaining, max_packet))
    except RemoteProtocolError as error:
        assert "max_packet %d" % max_packet in str(error)
    assert decoder._have <= 5


@SETTINGS
@given(st.sampled_from(FIRST_BYTES), st.binary(min_size=4, max_size=4), st.booleans())
def test_a_fifth_length_byte_is_never_waited_for(first, length, whole):
    header = bytes([first]) + bytes(byte | 128 for byte in length)  # every byte says "more"
    decoder = Decoder(4096)
    if whole:
        decoder.feed(header)
    else:
        for byte in header[:-1]:
            assert _step(decoder, bytes([byte])) == []
        decoder.feed(header[-1:])
    try:
        decoder.next_packet()
        raise AssertionError("accepted")
    except RemoteProtocolError as error:
        assert "longer than 4 bytes" in str(error)


@SETTINGS
@given(st.binary(max_size=400), st.integers(MIN_MAX_PACKET, 600), st.lists(st.integers(1, 64), max_size=8))
def test_random_bytes_under_any_bound_buffer_nothing_before_the_size_check(data, max_packet, steps):
    decoder = Decoder(max_packet)
    view = memoryview(data)
    index = 0
    try:
        while len(view):
            size = steps[index % len(steps)] if steps else len(view)
            index += 1
            for packet in _step(decoder, view[:size]):
                assert len(_wire(packet)) <= max_packet  # what passed is a packet we could send
            view = view[size:]
    except RemoteProtocolError:
        pass


@SETTINGS
@given(st.binary(min_size=1, max_size=60), st.lists(_packets, min_size=1, max_size=3))
def test_a_failed_decoder_stays_failed_until_reset(junk, stream):
    decoder = Decoder(512)
    try:
        _step(decoder, b"\xf0" + junk)  # type 15 is reserved: always an error
        raise AssertionError("accepted")
    except RemoteProtocolError:
        pass
    for call in (lambda: decoder.next_packet(), lambda: decoder.feed(_wire(stream[0]))):
        try:
            call()
            raise AssertionError("a failed decoder went on")
        except RemoteProtocolError as error:
            assert "reserved packet type 15" in str(error)
    decoder.reset()
    assert [packet for packet in stream for packet in _step(decoder, _wire(packet))] == stream


def _stream_of_packets(rng, size):
    out = bytearray()
    while len(out) < size:
        kind = rng.randrange(4)
        if kind == 0:
            out += _wire(p.Publish("t/%d" % rng.randrange(100), rng.randbytes(rng.randrange(0, 400))))
        elif kind == 1:
            out += _wire(p.Publish("a/b", rng.randbytes(rng.randrange(0, 40)), 1, False, False,
                                   rng.randrange(1, 65536)))
        elif kind == 2:
            out += _wire(p.Bare(p.PUBACK, rng.randrange(1, 65536)))
        else:
            out += _wire(sc.Suback(rng.randrange(1, 65536), [rng.choice([0, 1, 2, 0x80])]))
    return bytes(out)


def _decode_quietly(decoder, data, rng):
    view = memoryview(data)
    count = 0
    while len(view):
        size = rng.choice([1, 7, 100, 512, 4096])
        decoder.feed(view[:size])
        while decoder.next_packet() is not None:
            count += 1
        view = view[size:]
    return count


def test_a_long_stream_leaves_no_memory_behind():
    rng = random.Random(1883)
    data = _stream_of_packets(rng, 100_000)
    decoder = Decoder(512)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        assert _decode_quietly(decoder, data, rng) > 500
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(5):
            _decode_quietly(decoder, data, rng)
        peak = tracemalloc.get_traced_memory()[1]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if started:
            tracemalloc.stop()
    assert after - before < 1024, after - before
    assert peak - before < 8192, peak - before  # a packet object or two and one feed's view
