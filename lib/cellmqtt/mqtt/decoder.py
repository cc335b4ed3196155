"""The incremental, strict MQTT 3.1.1 decoder (sans-IO).

    decoder = Decoder(max_packet=2048)
    decoder.feed(data)                  # bytes as they arrive
    while (packet := decoder.next_packet()) is not None: ...

Call next_packet() until it returns None before feeding again. A packet that
arrives whole inside one fed chunk is parsed in place; only a packet split across
chunks is copied into the one preallocated buffer of max_packet bytes. A PUBLISH
larger than max_packet is not fatal: its first max_packet bytes give its topic and
packet id, the rest is read past without being kept, and it comes out as a Skipped
packet (topic, size, qos, id) to be acknowledged and reported. Any other packet over
max_packet is a protocol error as soon as its remaining length is known.
Fields that are memoryviews (PUBLISH payload) stay valid until the next feed() or
next_packet(); copy what you keep.

Anything malformed raises RemoteProtocolError; the decoder then stays failed (every
later call raises) until reset().
"""

from .._const import const
from ..errors import ConfigError, LocalProtocolError, RemoteProtocolError
from . import packets as p
from .topic import topic_error

DEFAULT_MAX_PACKET = const(2048)  # whole packet, header included; telemetry fits many times over
MIN_MAX_PACKET = const(16)  # room for every fixed-size packet and a short PUBLISH
_LENGTH_BYTES = const(4)  # remaining length is at most 4 bytes [MQTT-2.2.3]

# Required fixed-header flags per packet type [MQTT-2.2.2-1]; PUBLISH (None) has its own.
_FLAGS = (None, 0, 0, None, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0)


class Decoder:
    """What a client receives; server_codec.ServerDecoder also decodes what it sends."""

    def __init__(self, max_packet=DEFAULT_MAX_PACKET):
        if max_packet < MIN_MAX_PACKET:
            raise ConfigError("max_packet", "at least %d bytes" % MIN_MAX_PACKET)
        self.max_packet = max_packet
        self._buf = memoryview(bytearray(max_packet))
        self.reset()

    @staticmethod
    def parse(packet, head):
        return _parse(packet, head)

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
            raise LocalProtocolError("feed() before next_packet() returned None")
        if data:
            self._input = memoryview(data)
            self._pos = 0

    def next_packet(self):
        """The next complete packet, or None when more bytes are needed."""
        if self._failed is not None:
            raise RemoteProtocolError(self._failed)
        try:
            return self._next()
        except RemoteProtocolError as error:
            self._failed = error.args[0] if error.args else "malformed packet"
            self._input = None
            raise

    def _next(self):
        if self._skip:
            self._pass_over()
        data = self._input
        if self._have == 0:
            if data is None:
                return None
            pos = self._pos
            avail = len(data) - pos
            size, head = self._header(data, pos, avail)
            if size and size <= avail and size <= self.max_packet:
                self._pos = pos + size
                if self._pos == len(data):
                    self._input = None
                return self.parse(data[pos:pos + size], head)
            # A split or oversized packet: keep what arrived, up to what we keep of it.
            take = min(avail, self.max_packet)
            self._buf[0:take] = data[pos:pos + take]
            self._have = take
            self._size = size
            self._head = head
            self._consumed(pos + take)
        elif data is not None:
            self._fill(data)
        size = self._size
        if not size or self._have < min(size, self.max_packet):
            return None
        self._have = 0
        self._size = 0
        if size <= self.max_packet:
            return self.parse(self._buf[0:size], self._head)
        self._skip = size - self.max_packet
        self._pass_over()
        kept = self._buf
        body = kept[self._head:]
        if 2 + _u16(body, 0) + (2 if kept[0] & 6 else 0) > len(body):
            raise RemoteProtocolError("PUBLISH of %d bytes whose topic alone exceeds max_packet %d" % (
                size, len(kept)))
        return _publish(body, kept[0], size)

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

    def _fill(self, data):
        buf = self._buf
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

    def _header(self, data, pos, avail):
        """(total size, header length) of the packet at pos, (0, 0) if incomplete."""
        first = data[pos]
        kind = first >> 4
        flags = first & 15
        if kind == 0 or kind == 15:
            raise RemoteProtocolError("reserved packet type %d" % kind)
        required = _FLAGS[kind]
        if required is None:
            if kind == p.PUBLISH and (flags & 6 == 6 or flags & 14 == 8):
                raise RemoteProtocolError("PUBLISH flags 0x%x: QoS 3 or DUP with QoS 0" % flags)
        elif flags != required:
            raise RemoteProtocolError("packet type %d with reserved flags 0x%x" % (kind, flags))
        value = 0
        for index in range(1, _LENGTH_BYTES + 1):
            if index >= avail:
                return 0, 0
            byte = data[pos + index]
            value |= (byte & 127) << (7 * (index - 1))
            if byte < 128:
                size = index + 1 + value
                if size > self.max_packet and kind != p.PUBLISH:  # a PUBLISH is skipped
                    raise RemoteProtocolError("packet of %d bytes exceeds max_packet %d" % (size, self.max_packet))
                return size, index + 1
        raise RemoteProtocolError("remaining length longer than 4 bytes")


def _u16(body, index):
    if index + 2 > len(body):
        raise RemoteProtocolError("packet ends inside a field")
    return (body[index] << 8) | body[index + 1]


def _packet_id(body, index):
    value = _u16(body, index)
    if value == 0:
        raise RemoteProtocolError("packet id 0")
    return value


def _utf8_error(data, index, end):
    """Why data[index:end] is not well-formed UTF-8 without U+0000 [MQTT-1.5.3], or None."""
    while index < end:
        byte = data[index]
        if byte < 0x80:
            if byte == 0:
                return "U+0000 in a string"
            index += 1
            continue
        low = 0x80
        high = 0xBF
        if 0xC2 <= byte <= 0xDF:
            more = 1
        elif 0xE0 <= byte <= 0xEF:
            more = 2
            if byte == 0xE0:
                low = 0xA0  # overlong
            elif byte == 0xED:
                high = 0x9F  # UTF-16 surrogates [MQTT-1.5.3-1]
        elif 0xF0 <= byte <= 0xF4:
            more = 3
            if byte == 0xF0:
                low = 0x90  # overlong
            elif byte == 0xF4:
                high = 0x8F  # beyond U+10FFFF
        else:
            return "invalid UTF-8 lead byte 0x%02x" % byte
        if index + more >= end:
            return "UTF-8 sequence cut short"
        follow = data[index + 1]
        if follow < low or follow > high:
            return "invalid UTF-8 continuation"
        for offset in range(2, more + 1):
            follow = data[index + offset]
            if follow < 0x80 or follow > 0xBF:
                return "invalid UTF-8 continuation"
        index += more + 1
    return None


def _string(body, index):
    """(text, next index) of the length-prefixed UTF-8 string at index."""
    start = index + 2
    end = start + _u16(body, index)
    if end > len(body):
        raise RemoteProtocolError("string runs past the packet end")
    reason = _utf8_error(body, start, end)
    if reason is not None:
        raise RemoteProtocolError(reason)
    return str(body[start:end], "utf-8"), end


def _expect_length(body, size, kind):
    if len(body) != size:
        raise RemoteProtocolError("%s with remaining length %d, not %d" % (kind, len(body), size))


def _parse(packet, head):
    """The packet object for one whole packet a server sends (a memoryview, fixed header
    included); what only a client sends is server_codec.py's (PC tools and tests)."""
    first = packet[0]
    kind = first >> 4
    body = packet[head:]
    if kind == p.PUBLISH:
        return _publish(body, first, 0)
    if kind in (p.PUBACK, p.PUBREC, p.PUBREL, p.PUBCOMP, p.UNSUBACK):
        _expect_length(body, 2, "acknowledgement")
        return p.Bare(kind, _packet_id(body, 0))
    if kind == p.PINGRESP:
        _expect_length(body, 0, "PINGRESP")
        return p.PINGRESP_PACKET
    if kind == p.CONNACK:
        _expect_length(body, 2, "CONNACK")
        flags = body[0]
        code = body[1]
        if flags & 0xFE:
            raise RemoteProtocolError("CONNACK reserved flags 0x%x" % flags)
        if code > 5:
            raise RemoteProtocolError("CONNACK return code %d" % code)
        if code and flags:
            raise RemoteProtocolError("session present with a refusal [MQTT-3.2.2-4]")
        return p.Connack(bool(flags), code)
    if kind == p.SUBACK:
        packet_id = _packet_id(body, 0)
        if len(body) < 3:
            raise RemoteProtocolError("SUBACK without return codes")
        codes = list(body[2:])
        for code in codes:
            if code > 2 and code != p.SUBACK_FAILURE:
                raise RemoteProtocolError("SUBACK return code 0x%x" % code)
        return p.Suback(packet_id, codes)
    raise RemoteProtocolError("a server does not send packet type %d" % kind)


def _publish(body, first, size):
    """A PUBLISH from its body; with the size of one over max_packet, its Skipped event
    (topic and packet id, so it can be acknowledged and reported)."""
    qos = (first >> 1) & 3
    topic, index = _string(body, 0)
    reason = topic_error(topic)
    if reason is not None:
        raise RemoteProtocolError(reason)
    packet_id = None
    if qos:
        packet_id = _packet_id(body, index)
        index += 2
    if size:
        return p.Skipped(topic, size, qos, bool(first & 1), bool(first & 8), packet_id)
    return p.Publish(topic, body[index:], qos, bool(first & 1), bool(first & 8), packet_id)
