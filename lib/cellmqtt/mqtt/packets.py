"""The MQTT 3.1.1 codec (sans-IO): the 14 control packets as plain data objects, the
encoder and the incremental, strict decoder of what a client sends and receives.
One module: each module costs heap on a board.

    head, rest = encode(packet, buffer)   # write head, then rest unless None

The packet is laid out in the caller's buffer and head is a view of it. A PUBLISH
whose payload does not fit after its header leaves the payload as rest, never
copied; should even the rest of a packet not fit (a CONNECT with a long will or
password), head is a new bytearray of its size.
What we must not send raises LocalProtocolError before anything is written.

    decoder = Decoder(max_packet=2048)
    decoder.feed(data)                  # bytes as they arrive
    while (packet := decoder.next_packet()) is not None: ...

Call next_packet() until it returns None before feeding again. A packet that
arrives whole inside one fed chunk is parsed in place; only a packet split across
chunks is copied into the decoder's one buffer of max_packet bytes, made for the first
such packet (most arrive whole: a client that never gets one never holds it). A PUBLISH
larger than max_packet is not fatal: its first max_packet bytes give its topic and
packet id, the rest is read past without being kept, and it comes out as a Publish
without payload (topic, size, qos, id) to be acknowledged and reported. Any other packet over
max_packet is a protocol error as soon as its remaining length is known.
Decoded packets may hold memoryviews into the decoder's buffer (PUBLISH payload):
they are valid until the next feed() or next_packet(); copy what you keep.
Anything malformed raises RemoteProtocolError; the decoder then stays failed (every
later call raises) until reset().

What only a broker sends or receives (CONNECT, SUBSCRIBE ... decoded; CONNACK, SUBACK
encoded), and equality and a repr of the fields (tests, PC tools), are server_codec.py's:
a board never needs them.
"""

from .._const import const
from ..errors import ConfigError, LocalProtocolError, RemoteProtocolError
from .topic import filter_error, topic_error

CONNECT = const(1)
CONNACK = const(2)
PUBLISH = const(3)
PUBACK = const(4)
PUBREC = const(5)
PUBREL = const(6)
PUBCOMP = const(7)
SUBSCRIBE = const(8)
SUBACK = const(9)
UNSUBSCRIBE = const(10)
UNSUBACK = const(11)
PINGREQ = const(12)
PINGRESP = const(13)
DISCONNECT = const(14)

_PROTOCOL_LEVEL = const(4)  # 3.1.1
SUBACK_FAILURE = const(0x80)
DEFAULT_MAX_PACKET = const(2048)  # whole packet, header included; telemetry fits many times over
MIN_MAX_PACKET = const(16)  # room for every fixed-size packet and a short PUBLISH
_MAX_REMAINING = const(268435455)  # 4 length bytes [MQTT-2.2.3]
_MAX_U16 = const(65535)


class Will:
    """The last will: published by the broker when the link dies without DISCONNECT."""

    def __init__(self, topic, payload, qos=0, retain=False):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain


class Connect:
    TYPE = CONNECT

    def __init__(self, client_id, clean_session=True, keepalive_s=60, will=None, username=None,
                 password=None):
        self.client_id = client_id
        self.clean_session = clean_session
        self.keepalive_s = keepalive_s
        self.will = will
        self.username = username
        self.password = password


class Publish:
    """A PUBLISH. One larger than the client's max_packet is read past unkept: its
    payload is None and `size` the whole packet's; it is acknowledged as its QoS
    requires, never delivered."""

    TYPE = PUBLISH
    size: int

    def __init__(self, topic, payload=b"", qos=0, retain=False, dup=False, packet_id=None):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packet_id = packet_id


class Bare:
    """A packet of a type and at most a packet id: PUBACK, PUBREC, PUBREL, PUBCOMP and
    UNSUBACK carry one; PINGREQ, PINGRESP and DISCONNECT none (one shared instance each).
    A decoded CONNACK is one too, with its two fields, and a SUBACK with its return codes
    (a board only decodes them: server_codec makes them on a PC)."""

    session_present: bool  # CONNACK
    return_code: int  # CONNACK
    return_codes: list  # SUBACK: granted qos 0-2 or SUBACK_FAILURE

    def __init__(self, kind, packet_id=None):
        self.TYPE = kind
        self.packet_id = packet_id


class Subscribe:
    TYPE = SUBSCRIBE

    def __init__(self, packet_id, topics):
        self.packet_id = packet_id
        self.topics = topics  # [(filter, qos), ...]


PINGREQ_PACKET = Bare(PINGREQ)
PINGRESP_PACKET = Bare(PINGRESP)
DISCONNECT_PACKET = Bare(DISCONNECT)


# encoding


def _text(value, what):
    """UTF-8 bytes of a string field, checked [MQTT-1.5.3]."""
    if not isinstance(value, str):
        raise LocalProtocolError(what + " must be a str")
    if "\x00" in value:
        raise LocalProtocolError("NUL in " + what)
    data = value.encode()
    _check_length(len(data), what)
    return data


def _check_length(length, what, limit=_MAX_U16):
    if length > limit:
        raise LocalProtocolError("%s longer than %d bytes" % (what, limit))


def _check_u16(value, what, low=1):
    """A packet id (1..65535) or another two-byte field (low 0)."""
    if not (type(value) is int and low <= value <= _MAX_U16):  # the message only when it fails
        raise LocalProtocolError("%s %r not in %d..65535" % (what, value, low))


def check_qos(qos, what):
    if qos not in (0, 1, 2):
        raise LocalProtocolError("%s QoS %r not 0, 1 or 2" % (what, qos))


_topic_cache = [None, b""]  # the last topic name checked, and its bytes: most PUBLISHes repeat it


def topic_bytes(topic, will=""):
    """A topic name's bytes, checked (the last one is kept); LocalProtocolError if bad."""
    cache = _topic_cache
    if type(topic) is str and topic == cache[0]:
        return cache[1]
    data = _text(topic, will + "topic")
    reason = topic_error(topic)
    if reason is not None:
        raise LocalProtocolError(will + reason)
    cache[0] = topic
    cache[1] = data
    return data


def filter_bytes(filter_):
    """A topic filter's bytes, checked; LocalProtocolError if bad."""
    data = _text(filter_, "topic filter")
    reason = filter_error(filter_)
    if reason is not None:
        raise LocalProtocolError(reason)
    return data


def encode(packet, buffer):
    """(head, rest): the packet's bytes, to be written head first, then rest unless None.
    The packet is checked and laid out as parts: an int is a two-byte field, anything
    else raw bytes (a string field is its length, then its bytes); a PUBLISH payload
    comes after them."""
    kind = packet.TYPE
    first = kind << 4
    payload = None
    if kind == PUBLISH:
        topic = topic_bytes(packet.topic)
        qos = packet.qos
        check_qos(qos, "PUBLISH")
        payload = packet.payload
        if not (payload is None or isinstance(payload, (bytes, bytearray, memoryview))):
            raise LocalProtocolError("payload not bytes-like: %s" % type(payload).__name__)
        first |= qos << 1 | (1 if packet.retain else 0)
        parts = [len(topic), topic]
        if qos:
            _check_u16(packet.packet_id, "packet id")
            first |= 8 if packet.dup else 0
            parts.append(packet.packet_id)
        else:
            if packet.packet_id is not None or packet.dup:
                raise LocalProtocolError("QoS 0 with packet id or DUP")
    elif kind in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK):
        _check_u16(packet.packet_id, "packet id")
        first |= 2 if kind == PUBREL else 0
        parts = [packet.packet_id]
    elif kind == PINGREQ or kind == DISCONNECT:
        parts = []
    elif kind == SUBSCRIBE or kind == UNSUBSCRIBE:
        _check_u16(packet.packet_id, "packet id")
        subscribe = kind == SUBSCRIBE
        filters = packet.topics if subscribe else packet.filters
        if not filters:
            raise LocalProtocolError("no filters")
        first |= 2
        parts = [packet.packet_id]
        for filter_ in filters:
            if subscribe:
                filter_, qos = filter_
                check_qos(qos, "SUBSCRIBE")
            filter_ = filter_bytes(filter_)
            parts.append(len(filter_))
            parts.append(filter_)
            if subscribe:
                parts.append(bytes((qos,)))
    else:
        if kind != CONNECT:
            raise LocalProtocolError("a %s does not send packet type %d" % ("client", kind))
        client_id = _text(packet.client_id, "client id")
        if not (client_id or packet.clean_session):
            raise LocalProtocolError("empty client id needs clean session")
        keepalive = packet.keepalive_s
        _check_u16(keepalive, "keepalive", 0)
        flags = 2 if packet.clean_session else 0
        # "MQTT", then level and flags (known at the end) [MQTT-3.1.2-1, 3.1.2-2]
        parts = [b"\0\4MQTT", 0, keepalive, len(client_id), client_id]
        will = packet.will
        if will is not None:
            check_qos(will.qos, "will")
            topic = topic_bytes(will.topic, "will ")
            _check_length(len(will.payload), "will payload")
            parts += (len(topic), topic, len(will.payload), will.payload)
            flags |= 4 | (will.qos << 3) | (0x20 if will.retain else 0)
        if packet.username is not None:
            flags |= 0x80
            name = _text(packet.username, "user name")
            parts += (len(name), name)
        if packet.password is not None:
            if packet.username is None:
                raise LocalProtocolError("password without user name")  # [MQTT-3.1.2-22]
            flags |= 0x40
            _check_length(len(packet.password), "password")
            parts += (len(packet.password), packet.password)
        parts[1] = _PROTOCOL_LEVEL << 8 | flags
    body = 0
    for part in parts:
        body += 2 if type(part) is int else len(part)
    total = body + (len(payload) if payload else 0)
    _check_length(total, "packet", _MAX_REMAINING)
    index = 2 + (total > 127) + (total > 16383) + (total > 2097151)  # the fixed header's size
    size = index + total
    rest = None
    if size > len(buffer):
        rest = payload
        size = index + body
        if size > len(buffer):
            buffer = bytearray(size)
    buffer[0] = first
    index = 1
    while total > 127:  # the remaining length, 7 bits a byte, least significant first
        buffer[index] = total & 127 | 128
        total >>= 7
        index += 1
    buffer[index] = total
    index += 1
    for part in parts:
        if type(part) is int:
            buffer[index] = part >> 8
            buffer[index + 1] = part & 255
            index += 2
        else:
            buffer[index:index + len(part)] = part
            index += len(part)
    if payload and rest is None:
        buffer[index:size] = payload
    return (buffer if size == len(buffer) else buffer[:size]), rest


# decoding


class Decoder:
    """What a client receives; server_codec.ServerDecoder also decodes what it sends
    (its own parse function in `_parse`)."""

    def __init__(self, max_packet=DEFAULT_MAX_PACKET):
        if max_packet < MIN_MAX_PACKET:
            raise ConfigError("max_packet", "at least %d bytes" % MIN_MAX_PACKET)
        self.max_packet = max_packet
        self._buf: memoryview = None  # type: ignore[assignment]  # made for the first split packet, then kept
        self._parse = parse
        self.reset()

    def reset(self):
        """Forget everything fed so far and any earlier failure (a new connection)."""
        self._input = None  # memoryview of fed data not yet consumed
        self._pos = 0
        self._have = 0  # bytes of a split packet held in the buffer
        self._size = 0  # that packet's total size, 0 while its header is incomplete
        self._head = 0  # that packet's fixed header length
        self._skip = 0  # bytes of an oversized PUBLISH still to read past
        self._failed = None

    def feed(self, data):
        """Hand over received bytes; the decoder keeps a view of them, no copy."""
        if self._failed is not None:
            raise RemoteProtocolError(self._failed)
        if self._input is not None:
            raise LocalProtocolError("feed() before next_packet() gave None")
        if data:
            self._input = memoryview(data)
            self._pos = 0

    def next_packet(self):
        """The next complete packet, or None when more bytes are needed."""
        if self._failed is not None:
            raise RemoteProtocolError(self._failed)
        try:
            if self._skip:
                self._pass_over()
            data = self._input
            buf = self._buf
            if self._have == 0:
                if data is None:
                    return None
                pos = self._pos
                avail = len(data) - pos
                size, head = self._header(data, pos, avail)
                if size and size <= avail and size <= self.max_packet:
                    self._consumed(pos + size)
                    return self._parse(data[pos:pos + size], head)
                # A split or oversized packet: keep what arrived, up to what we keep of it.
                if buf is None:
                    buf = self._buf = memoryview(bytearray(self.max_packet))
                take = min(avail, self.max_packet)
                buf[0:take] = data[pos:pos + take]
                self._have = take
                self._size = size
                self._head = head
                self._consumed(pos + take)
            elif data is not None:
                pos = self._pos
                end = len(data)
                while self._size == 0 and pos < end:
                    # Header bytes one at a time: never copy past this packet's end.
                    buf[self._have] = data[pos]
                    self._have += 1
                    pos += 1
                    self._size, self._head = self._header(buf, 0, self._have)
                if self._size:
                    take = min(min(self._size, self.max_packet) - self._have, end - pos)
                    buf[self._have:self._have + take] = data[pos:pos + take]
                    self._have += take
                    pos += take
                self._consumed(pos)
            size = self._size
            if not size or self._have < min(size, self.max_packet):
                return None
            self._have = 0
            self._size = 0
            if size <= self.max_packet:
                return self._parse(buf[0:size], self._head)
            self._skip = size - self.max_packet
            self._pass_over()
            body = buf[self._head:]
            if 2 + _u16(body, 0) + (2 if buf[0] & 6 else 0) > len(body):
                raise RemoteProtocolError("PUBLISH topic exceeds max_packet %d" % len(buf))
            return parse(buf, self._head, size)
        except RemoteProtocolError as error:
            self._failed = error.args[0]
            self._input = None
            raise

    def _consumed(self, pos):
        """Fed data is used up to pos: drop the view once all of it is."""
        data = self._input
        if data is None or pos == len(data):
            self._input = None
        else:
            self._pos = pos

    def _pass_over(self):
        """Read past the rest of an oversized PUBLISH: nothing of it is kept."""
        data = self._input
        if data is not None:
            take = min(self._skip, len(data) - self._pos)
            self._skip -= take
            self._consumed(self._pos + take)

    def _header(self, data, pos, avail):
        """(total size, header length) of the packet at pos, (0, 0) if incomplete."""
        first = data[pos]
        kind = first >> 4
        flags = first & 15
        if kind == 0 or kind == 15:
            raise RemoteProtocolError("reserved packet type %d" % kind)
        if kind == PUBLISH:
            if flags & 6 == 6 or flags & 14 == 8:
                raise RemoteProtocolError("PUBLISH flags 0x%x: QoS 3 or DUP with QoS 0" % flags)
        elif flags != (2 if kind in (PUBREL, SUBSCRIBE, UNSUBSCRIBE) else 0):  # [MQTT-2.2.2-1]
            raise RemoteProtocolError("type %d: reserved flags 0x%x" % (kind, flags))
        value = 0
        for index in range(1, 5):  # remaining length is at most 4 bytes [MQTT-2.2.3]
            if index >= avail:
                return 0, 0
            byte = data[pos + index]
            value |= (byte & 127) << (7 * (index - 1))
            if byte < 128:
                size = index + 1 + value
                if size > self.max_packet and kind != PUBLISH:  # a PUBLISH is skipped
                    raise RemoteProtocolError("%d bytes exceeds max_packet %d" % (size, self.max_packet))
                # a PINGREQ, PINGRESP, DISCONNECT has none; a CONNACK and an ack 2 bytes
                fixed = 0 if kind >= PINGREQ else 2 if kind == CONNACK or PUBACK <= kind <= PUBCOMP or \
                    kind == UNSUBACK else value
                if value != fixed:
                    raise RemoteProtocolError("remaining length %d" % value)
                return size, index + 1
        raise RemoteProtocolError("length longer than 4 bytes")


def _u16(body, index):
    if index + 2 > len(body):
        raise RemoteProtocolError("past the packet end")
    return (body[index] << 8) | body[index + 1]


def _packet_id(body, index):
    value = _u16(body, index)
    if value == 0:
        raise RemoteProtocolError("packet id 0")
    return value


def _string(body, index):
    """(text, next index) of the length-prefixed string at index: well-formed UTF-8
    without U+0000 [MQTT-1.5.3]."""
    start = index + 2
    end = start + _u16(body, index)
    if end > len(body):
        raise RemoteProtocolError("past the packet end")
    try:
        text = str(body[start:end], "utf-8")  # checks each sequence's lead and continuation bytes
    except ValueError:  # UnicodeError
        text = None
    # What that lets pass on MicroPython: lead bytes of overlong forms or past U+10FFFF,
    # and after E0, ED, F0, F4 a first continuation that makes an overlong form, a UTF-16
    # surrogate [MQTT-1.5.3-1] or one past U+10FFFF; and U+0000 [MQTT-1.5.3-2]
    lead = 0
    for index in range(start, end):
        byte = body[index]
        if byte == 0 or byte == 0xC0 or byte == 0xC1 or byte > 0xF4 or lead == 0xE0 and byte < 0xA0 or \
                lead == 0xED and byte > 0x9F or lead == 0xF0 and byte < 0x90 or lead == 0xF4 and byte > 0x8F:
            text = None
        lead = byte
    if text is not None:
        return text, end
    raise RemoteProtocolError("bad UTF-8 or U+0000")


def parse(packet, head, size=0):
    """The packet object for one whole packet a server sends (a memoryview, fixed header
    included; its remaining length checked by the decoder); what only a client sends is
    server_codec.py's (PC tools and tests). With the size of a PUBLISH over max_packet
    (its first max_packet bytes), that PUBLISH without its payload: its topic and packet
    id, so it can be acknowledged and reported."""
    first = packet[0]
    kind = first >> 4
    body = packet[head:]
    if kind == PUBLISH:
        qos = (first >> 1) & 3
        topic, index = _string(body, 0)
        reason = topic_error(topic)
        if reason is not None:
            raise RemoteProtocolError(reason)
        packet_id = None
        if qos:
            packet_id = _packet_id(body, index)
            index += 2
        packet = Publish(topic, None if size else body[index:], qos, bool(first & 1), bool(first & 8), packet_id)
        if size:
            packet.size = size
        return packet
    if kind in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK):
        return Bare(kind, _packet_id(body, 0))
    if kind == PINGRESP:
        return PINGRESP_PACKET
    if kind == CONNACK:
        flags = body[0]
        code = body[1]
        if flags & 0xFE:
            raise RemoteProtocolError("type %d: reserved flags 0x%x" % (kind, flags))
        if code > 5:
            raise RemoteProtocolError("%s return code 0x%x" % ("CONNACK", code))
        if code and flags:
            raise RemoteProtocolError("session present with a refusal")  # [MQTT-3.2.2-4]
        packet = Bare(CONNACK)
        packet.session_present = bool(flags)
        packet.return_code = code
        return packet
    if kind == SUBACK:
        packet_id = _packet_id(body, 0)
        codes = list(body[2:])  # as many as the SUBSCRIBE had filters: the session checks
        for code in codes:
            if code > 2 and code != SUBACK_FAILURE:
                raise RemoteProtocolError("%s return code 0x%x" % ("SUBACK", code))
        packet = Bare(SUBACK, packet_id)
        packet.return_codes = codes
        return packet
    raise RemoteProtocolError("a %s does not send packet type %d" % ("server", kind))

