# The codec against golden bytes written from the MQTT 3.1.1 specification: every
# packet type fed whole, one byte at a time and with trailing data; every strictness
# rule; the size bound checked before anything is buffered.
from cellmqtt.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt.rare import Unsubscribe
from cellmqtt.mqtt import server_codec as sc
from cellmqtt.mqtt.packets import Decoder as ClientDecoder
# every packet type, both ways: the broker's half of the codec on top of the client's
from cellmqtt.mqtt.server_codec import ServerDecoder as Decoder
from cellmqtt.mqtt.server_codec import _put_header
from cellmqtt.mqtt.server_codec import encode, encode_into, encoded_size
from support import raises

H = bytes.fromhex

# (packet, bytes): each byte sequence written by hand from section 3 of the spec
GOLDEN = [
    # CONNECT: "MQTT", level 4, flags 0x02 (clean), keepalive 60, client id "cid" [3.1]
    (p.Connect("cid"), H("100f00044d5154540402003c0003636964")),
    # CONNECT with will (QoS 1, retain), user name, password: flags 0xee
    (p.Connect("cid", True, 60, p.Will("w/t", b"bye", 1, True), "u", b"pw"),
     H("102000044d51545404ee003c00036369640003772f74000362796500017500027077")),
    # CONNECT, persistent session, keepalive 0, user name only: flags 0x80
    (p.Connect("d", False, 0, None, "me"), H("101100044d5154540480000000016400026d65")),
    (sc.Connack(True, 0), H("20020100")),
    (sc.Connack(False, 5), H("20020005")),
    # PUBLISH QoS 0: topic "a/b", payload "hello" [3.3]
    (p.Publish("a/b", b"hello"), H("300a0003612f6268656c6c6f")),
    # PUBLISH QoS 1, DUP, RETAIN, packet id 7: first byte 0x3b
    (p.Publish("a/b", b"hello", 1, True, True, 7), H("3b0c0003612f62000768656c6c6f")),
    # PUBLISH QoS 2, packet id 0x1234, empty payload
    (p.Publish("x", b"", 2, False, False, 0x1234), H("3405000178" + "1234")),
    (p.Bare(p.PUBACK, 1), H("40020001")),
    (p.Bare(p.PUBREC, 2), H("50020002")),
    (p.Bare(p.PUBREL, 3), H("62020003")),  # PUBREL flags 0010 [MQTT-3.6.1-1]
    (p.Bare(p.PUBCOMP, 0xFFFF), H("7002ffff")),
    # SUBSCRIBE id 5: "a/+" QoS 1, "#" QoS 2; flags 0010 [MQTT-3.8.1-1]
    (p.Subscribe(5, [("a/+", 1), ("#", 2)]), H("820c00050003612f2b0100012302")),
    (sc.Suback(5, [1, 0x80]), H("9004000501" + "80")),
    (Unsubscribe(6, ["a/+"]), H("a20700060003612f2b")),
    (p.Bare(p.UNSUBACK, 6), H("b0020006")),
    (p.PINGREQ_PACKET, H("c000")),
    (p.PINGRESP_PACKET, H("d000")),
    (p.DISCONNECT_PACKET, H("e000")),
]


def _joined(packet):
    return b"".join(bytes(piece) for piece in encode(packet))


def _drain(decoder, out):
    while True:
        packet = decoder.next_packet()
        if packet is None:
            return
        if type(packet) is p.Publish and packet.payload is not None:  # None: one over max_packet
            packet.payload = bytes(packet.payload)  # a view: valid until the next call
        out.append(packet)


def _decode_all(data, max_packet=2048, step=None):
    decoder = Decoder(max_packet)
    out = []
    step = step or len(data)
    for start in range(0, len(data), step):
        decoder.feed(data[start:start + step])
        _drain(decoder, out)
    return out


def _one(data, max_packet=2048):
    return _decode_all(data, max_packet)


def _rejected(data, words=None, max_packet=2048):
    error = raises(RemoteProtocolError, _decode_all, data, max_packet)
    if words:
        assert words in str(error), str(error)
    return error


def test_the_clients_codec_leaves_the_brokers_half_out():
    # what only a client sends is refused by the client's decoder, and what only a
    # broker sends by its encoder: a board never carries that code (server_codec.py)
    for packet, wire in GOLDEN:
        if packet.TYPE in (p.CONNECT, p.SUBSCRIBE, p.UNSUBSCRIBE, p.PINGREQ, p.DISCONNECT):
            decoder = ClientDecoder()
            decoder.feed(wire)
            error = raises(RemoteProtocolError, decoder.next_packet)
            assert "a server does not send packet type %d" % packet.TYPE in str(error)
        if packet.TYPE in (p.CONNACK, p.SUBACK, p.PINGRESP):
            raises(LocalProtocolError, p.encode, packet, bytearray(16))


def test_every_packet_type_encodes_to_the_golden_bytes():
    kinds = set()
    for packet, wire in GOLDEN:
        assert _joined(packet) == wire, (packet, _joined(packet).hex())
        assert encoded_size(packet) == len(wire)
        buffer = bytearray(len(wire) + 3)
        assert encode_into(packet, buffer) == len(wire) and buffer[:len(wire)] == wire
        kinds.add(packet.TYPE)
    assert kinds == set(range(1, 15))


def test_every_packet_decodes_whole_bytewise_and_with_trailing_data():
    for packet, wire in GOLDEN:
        assert _decode_all(wire) == [packet], packet
        assert _decode_all(wire, step=1) == [packet], packet
        trailing = wire + H("c000") + H("300100")[:2]  # a PINGREQ, then half a packet
        decoder = Decoder()
        decoder.feed(trailing)
        got = []
        _drain(decoder, got)
        assert got == [packet, p.PINGREQ_PACKET]
        assert decoder.next_packet() is None


def test_a_stream_of_all_packets_in_odd_pieces():
    stream = b"".join(wire for _, wire in GOLDEN)
    expected = [packet for packet, _ in GOLDEN]
    for step in (1, 2, 3, 7, 64, len(stream)):
        assert _decode_all(stream, step=step) == expected, step


def test_publish_payload_is_a_view_not_a_copy():
    decoder = Decoder()
    data = H("300a0003612f6268656c6c6f")
    decoder.feed(data)
    packet = decoder.next_packet()
    assert isinstance(packet.payload, memoryview) and bytes(packet.payload) == b"hello"


def test_the_buffer_for_a_split_packet_is_made_for_the_first_one_and_kept():
    decoder = ClientDecoder(max_packet=64)
    decoder.feed(H("d000d000"))  # whole packets are parsed where they arrived
    assert decoder.next_packet() == p.PINGRESP_PACKET and decoder.next_packet() == p.PINGRESP_PACKET
    assert decoder.next_packet() is None and decoder._buf is None
    decoder.feed(H("40"))
    assert decoder.next_packet() is None
    buffer = decoder._buf
    assert buffer is not None and len(buffer) == 64
    decoder.feed(H("020007"))
    assert decoder.next_packet() == p.Bare(p.PUBACK, 7) and decoder._buf is buffer


def test_remaining_length_encoding_table():
    # Table 2.4 of the spec: boundaries of 1 to 4 length bytes
    for value, wire in ((0, "00"), (127, "7f"), (128, "8001"), (16383, "ff7f"), (16384, "808001"),
                        (2097151, "ffff7f"), (2097152, "80808001"), (268435455, "ffffff7f")):
        buffer = bytearray(5)
        size = _put_header(buffer, 0x30, value)
        assert bytes(buffer[1:size]) == H(wire), value


def test_multibyte_remaining_length_decodes():
    packet = p.Publish("big", bytes(range(256)) * 2, 1, False, False, 9)
    wire = _joined(packet)
    assert wire[1:3] == H("8704")  # 2 + 3 + 2 + 512 = 519
    assert _decode_all(wire, step=100) == [packet]
    # 3 and 4 length bytes: the size is decoded (and refused) from the header alone
    _rejected(H("90808001"), "16388 bytes exceeds")
    _rejected(H("9080808001"), "2097157 bytes exceeds")
    _rejected(H("90ffffff7f"), "268435460 bytes exceeds")


def test_reserved_packet_types_and_fixed_header_flags():
    _rejected(H("0000"), "reserved packet type 0")
    _rejected(H("f000"), "reserved packet type 15")
    for bad in ("41020001", "60020001", "80050001000161", "a0050001000161", "c100", "e800", "21020000",
                "9103000100", "b1020001", "d200", "71020001", "51020001", "1100"):
        _rejected(H(bad), "reserved flags")


def test_publish_flags_qos3_and_dup_without_qos():
    _rejected(H("36050001780001"), "QoS 3")
    _rejected(H("3803000178"), "DUP with QoS 0")


def test_remaining_length_longer_than_four_bytes():
    _rejected(H("30ffffffff01"), "longer than 4 bytes")


def test_size_bound_is_checked_before_anything_is_buffered():
    decoder = Decoder(max_packet=64)
    decoder.feed(H("90ff"))  # a SUBACK whose length is not complete yet: fine
    assert decoder.next_packet() is None
    decoder.feed(H("7f"))  # 16383: known now, over the bound, rejected at once
    error = raises(RemoteProtocolError, decoder.next_packet)
    assert "exceeds max_packet 64" in str(error)
    # exactly the bound is fine
    wire = _joined(p.Publish("t", bytes(64 - 5)))
    assert len(wire) == 64 and len(_one(wire, max_packet=64)) == 1


def test_an_oversized_publish_is_read_past_and_reported():
    big = p.Publish("cmd/in", bytes(range(256)) * 20, 1, True, True, 77)
    after = p.Publish("cmd/in", b"next", 1, False, False, 78)
    wire = _joined(big) + _joined(after) + H("d000")
    expected = [sc.Skipped("cmd/in", len(_joined(big)), 1, True, True, 77), after, p.PINGRESP_PACKET]
    for step in (1, 7, 64, 65, 1000, len(wire)):
        assert _decode_all(wire, max_packet=64, step=step) == expected, step
    assert _decode_all(_joined(p.Publish("t", bytes(60))), max_packet=64) == [sc.Skipped("t", 65)]
    # QoS 2, and a size that needs four length bytes: reported once its first 64 bytes came
    decoder = Decoder(max_packet=64)
    decoder.feed(H("3480808001") + H("0001") + b"t" + H("0005"))
    assert decoder.next_packet() is None
    decoder.feed(bytes(54))
    assert decoder.next_packet() == sc.Skipped("t", 2097157, 2, False, False, 5)
    left = 2097157 - 64
    zeros = memoryview(bytes(4096))
    while left:
        chunk = min(left, 4096)
        decoder.feed(zeros[:chunk])
        assert decoder.next_packet() is None
        left -= chunk
    decoder.feed(H("d000"))
    assert decoder.next_packet() == p.PINGRESP_PACKET


def test_an_oversized_publish_whose_topic_does_not_fit_is_an_error():
    wire = _joined(p.Publish("t" * 70, b"x", 1, False, False, 1))
    _rejected(wire, "PUBLISH topic exceeds max_packet 64", max_packet=64)
    _rejected(H("306600026123") + bytes(100), "wildcard", max_packet=64)  # topic "a#"


def test_packet_id_zero_is_rejected():
    _rejected(H("40020000"), "packet id 0")
    _rejected(H("320500017800" + "00"), "packet id 0")
    _rejected(H("8206000000016100"), "packet id 0")
    _rejected(H("b0020000"), "packet id 0")


def test_malformed_utf8_and_nul_in_strings():
    for bad in ("ff", "c080", "c1bf", "e08080", "e09fbf", "eda080", "f0808080", "f08fbfbf", "f4908080", "f5808080",
                "e282", "61006200", "80", "f880808080"):
        raw = H(bad)
        topic = bytes((0, len(raw))) + raw
        _rejected(bytes((0x30, len(topic))) + topic)
    # well-formed multi-byte text passes: U+00E9, U+20AC, U+1F600
    text = "\u00e9\u20ac\U0001f600"
    assert _one(_joined(p.Publish(text, b"")))[0].topic == text


def test_topic_name_rules_in_publish():
    _rejected(H("3005000361") + b"/+", "wildcard")
    _rejected(H("3005000361") + b"/#", "wildcard")
    _rejected(H("30020000"), "empty topic")
    _rejected(H("3004000561") + b"b", "past the packet end")


def test_subscribe_filter_and_qos_rules():
    def subscribe(filter_, qos=0):
        body = H("0001") + bytes((0, len(filter_))) + filter_ + bytes((qos,))
        return bytes((0x82, len(body))) + body

    for bad in (b"a/#/b", b"a+", b"#a", b"a/b#", b"", b"+x/y"):
        _rejected(subscribe(bad))
    _rejected(subscribe(b"a", 3), "QoS byte")
    _rejected(subscribe(b"a", 0x04), "QoS byte")
    _rejected(H("82020001"), "without filters")
    _rejected(H("8205000100016100")[:-1], "without QoS")
    assert _one(subscribe(b"+/a/#", 2))[0].topics == [("+/a/#", 2)]


def test_unsubscribe_rules():
    _rejected(H("a2020001"), "without filters")
    _rejected(H("a20600010002612b"), "wildcard inside a level")


def test_connect_rules():
    good = H("100f00044d5154540402003c0003636964")

    def variant(offset, value):
        data = bytearray(good)
        data[offset] = value
        return bytes(data)

    _rejected(variant(7, ord("X")), "protocol name")
    _rejected(variant(8, 3), "protocol level 3")
    _rejected(variant(9, 0x03), "reserved flag")
    _rejected(variant(9, 0x1e), "will flags")  # will QoS 3
    _rejected(variant(9, 0x0a), "will flags")  # will QoS without will flag
    _rejected(variant(9, 0x22), "will flags")  # will retain without will flag
    _rejected(variant(9, 0x42), "password without user name")
    _rejected(bytes((0x10, 0x10)) + good[2:] + b"x", "extra bytes")
    _rejected(bytes((0x10, 0x0e)) + good[2:-1], "past the packet end")  # client id cut short


def test_connack_rules():
    _rejected(H("20020006"), "CONNACK return code 0x6")
    _rejected(H("20020200"), "reserved flags")
    _rejected(H("20020101"), "session present with a refusal")
    _rejected(H("2003000000"), "remaining length 3")


def test_suback_and_fixed_size_rules():
    _rejected(H("9003000103"), "return code 0x3")
    # a SUBACK without return codes decodes: the session holds it against its SUBSCRIBE's filters
    assert _one(H("90020001")) == [sc.Suback(1, [])]
    _rejected(H("d00100"), "remaining length 1")
    _rejected(H("4003000100"), "remaining length 3")
    _rejected(H("400100"), "remaining length 1")


def test_decoder_fails_fast_and_reset_recovers():
    decoder = Decoder()
    decoder.feed(H("0000"))
    raises(RemoteProtocolError, decoder.next_packet)
    raises(RemoteProtocolError, decoder.next_packet)
    raises(RemoteProtocolError, decoder.feed, H("c000"))
    decoder.reset()
    decoder.feed(H("c000"))
    assert decoder.next_packet() == p.PINGREQ_PACKET


def test_feeding_before_draining_is_our_mistake():
    decoder = Decoder()
    decoder.feed(H("c000c000"))
    raises(LocalProtocolError, decoder.feed, H("c000"))
    assert decoder.next_packet() == p.PINGREQ_PACKET


def test_max_packet_has_a_floor():
    raises(ConfigError, Decoder, 8)


def test_encoder_refuses_what_we_must_not_send():
    bad = [
        p.Publish("a/+", b""), p.Publish("a\x00b", b""), p.Publish("", b""), p.Publish("t", b"", 3),
        p.Publish("t", b"", 1), p.Publish("t", b"", 1, False, False, 0), p.Publish("t", b"", 0, False, False, 5),
        p.Publish("t", b"", 0, False, True), p.Publish("t", "text"),
        p.Bare(p.PUBACK, 0), p.Bare(p.PUBREL, 65536), p.Subscribe(1, []), p.Subscribe(1, [("a/#/b", 0)]),
        p.Subscribe(1, [("a", 3)]), Unsubscribe(1, []), Unsubscribe(1, ["a+"]), sc.Suback(1, [3]),
        sc.Suback(1, []), sc.Connack(True, 2), sc.Connack(False, 6),
        p.Connect("", False), p.Connect("c", True, 65536), p.Connect("c", True, 60, None, None, b"pw"),
        p.Connect("c", True, 60, p.Will("w/#", b"")), p.Connect("c", True, 60, p.Will("w", b"", 3)),
    ]
    for packet in bad:
        raises(LocalProtocolError, encode, packet)


def test_publish_into_checks_every_topic_and_field_after_a_good_one():
    # the encoder remembers the last good topic name: nothing bad may ride on it
    buffer = bytearray(64)
    good = p.Publish("a/b", b"x", 1, False, False, 7)
    size = encode_into(good, buffer)
    assert bytes(buffer[:size]) == b"".join(bytes(piece) for piece in encode(good))
    for topic in ("a/+", "a/#", "", "a\x00b", b"a/b"):
        raises(LocalProtocolError, encode_into, p.Publish(topic, b"x", 1, False, False, 7), buffer)
    for qos, packet_id, payload in ((1, 0, b"x"), (1, None, b"x"), (3, 1, b"x"), (0, 1, b"x"), (1, 1, "text")):
        raises(LocalProtocolError, encode_into, p.Publish("a/b", payload, qos, False, False, packet_id), buffer)
    assert encode_into(good, buffer) == size


def test_publish_into_matches_encode_across_every_length_size():
    block = bytes(range(256)) * 64  # 16 KiB: the payloads are views of it, never copies
    buffer = bytearray(16400)
    for size in (0, 1, 100, 121, 122, 123, 200, 16370, 16376, 16377, 16380):
        for qos, packet_id in ((0, None), (1, 9)):
            payload = memoryview(block)[:size]
            packet = p.Publish("t/x", payload, qos, False, False, packet_id)
            written = encode_into(packet, buffer)
            head = encode(packet)[0]
            assert written == encoded_size(packet) == len(head) + size
            assert bytes(buffer[:len(head)]) == bytes(head)
            if size:
                assert buffer[len(head)] == block[0] and buffer[written - 1] == block[size - 1]
