"""The MQTT 3.1.1 encoder (sans-IO): packet objects to bytes.

    encode(packet) -> tuple of pieces to write in order. A PUBLISH gives
        (header, payload): the header (fixed header, topic, packet id) is built in
        a small new buffer and the payload is the caller's object, never copied.
    encode_into(packet, buffer) -> number of bytes written into a caller's buffer.

What we must not send raises LocalProtocolError before anything is written.
"""

from .._const import const
from ..errors import LimitExceeded, LocalProtocolError
from . import packets as p
from .topic import filter_error, topic_error

_MAX_REMAINING = const(268435455)  # 4 length bytes [MQTT-2.2.3]
_MAX_U16 = const(65535)
# The empty packets are constants: nothing to build.
_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"


def _check(condition, reason):
    if not condition:
        raise LocalProtocolError(reason)


def _text(value, what):
    """UTF-8 bytes of a string field, checked [MQTT-1.5.3]."""
    _check(isinstance(value, str), "%s must be a str" % what)
    _check("\x00" not in value, "NUL in " + what)
    data = value.encode()
    _check(len(data) <= _MAX_U16, "%s longer than 65535 bytes" % what)
    return data


def _binary(value, what):
    _check(len(value) <= _MAX_U16, "%s longer than 65535 bytes" % what)
    return value


def _check_id(packet_id):
    if not (isinstance(packet_id, int) and 0 < packet_id <= _MAX_U16):  # the message only when it fails
        raise LocalProtocolError("packet id %r not in 1..65535" % (packet_id,))


def _check_qos(qos, what):
    if qos not in (0, 1, 2):
        raise LocalProtocolError("%s QoS %r not 0, 1 or 2" % (what, qos))


def _length_size(remaining):
    _check(remaining <= _MAX_REMAINING, "packet too large for MQTT")
    if remaining < 128:
        return 1
    if remaining < 16384:
        return 2
    return 3 if remaining < 2097152 else 4


def _put_header(buf, first, remaining):
    buf[0] = first
    index = 1
    while True:
        byte = remaining & 127
        remaining >>= 7
        if remaining:
            buf[index] = byte | 128
            index += 1
        else:
            buf[index] = byte
            return index + 1


def _put_u16(buf, index, value):
    buf[index] = value >> 8
    buf[index + 1] = value & 255
    return index + 2


def _put_field(buf, index, data):
    index = _put_u16(buf, index, len(data))
    end = index + len(data)
    buf[index:end] = data
    return end


_topic_cache = [None, b""]  # the last topic name checked, and its bytes: most PUBLISHes repeat it


def _topic_bytes(topic):
    """A new topic name's bytes, checked, and kept as the last one."""
    data = _text(topic, "topic")
    reason = topic_error(topic)
    _check(reason is None, reason or "")
    _topic_cache[0] = topic
    _topic_cache[1] = data
    return data


def _publish_head(packet):
    """(first byte, topic bytes, packet id or None) of a PUBLISH, checked."""
    topic = packet.topic
    cache = _topic_cache
    topic = cache[1] if type(topic) is str and topic == cache[0] else _topic_bytes(topic)
    qos = packet.qos
    if qos not in (0, 1, 2):
        raise LocalProtocolError("PUBLISH QoS %r not 0, 1 or 2" % (qos,))
    payload = packet.payload
    if not (payload is None or isinstance(payload, (bytes, bytearray, memoryview))):
        raise LocalProtocolError("payload must be bytes, bytearray or memoryview, not %s" % type(payload).__name__)
    first = 0x30 | (qos << 1) | (1 if packet.retain else 0)
    if not qos:
        _check(packet.packet_id is None and not packet.dup, "QoS 0 PUBLISH with packet id or DUP")
        return first, topic, None
    packet_id = packet.packet_id
    if not (type(packet_id) is int and 0 < packet_id <= _MAX_U16):
        _check_id(packet_id)  # raises, naming it
    return first | (8 if packet.dup else 0), topic, packet_id


def _publish_into(packet, buffer):
    """encode_into's path for the packet a device sends most: laid out in place, no
    list of parts, no calls per field."""
    first, topic, packet_id = _publish_head(packet)
    payload = packet.payload
    topic_size = len(topic)
    total = 2 + topic_size + (0 if packet_id is None else 2) + (0 if payload is None else len(payload))
    index = 2 if total < 128 else 3 if total < 16384 else 1 + _length_size(total)
    size = index + total
    if size > len(buffer):
        _fits(size, buffer)  # raises
    buffer[0] = first
    if index == 2:
        buffer[1] = total
    elif index == 3:
        buffer[1] = (total & 127) | 128
        buffer[2] = total >> 7
    else:
        _put_header(buffer, first, total)
    buffer[index] = topic_size >> 8
    buffer[index + 1] = topic_size & 255
    index += 2
    buffer[index:index + topic_size] = topic
    index += topic_size
    if packet_id is not None:
        buffer[index] = packet_id >> 8
        buffer[index + 1] = packet_id & 255
        index += 2
    if payload:
        buffer[index:size] = payload
    return size


def _fields(packet):
    """(first byte, list of parts, trailing payload or None): the packet's layout.
    Parts are ints (one u16) or bytes (length-prefixed) or a 1-tuple (raw bytes)."""
    kind = packet.TYPE
    if kind == p.PUBLISH:
        first, topic, packet_id = _publish_head(packet)
        return first, [topic] if packet_id is None else [topic, packet_id], packet.payload
    if kind in (p.PUBACK, p.PUBREC, p.PUBREL, p.PUBCOMP, p.UNSUBACK):
        _check_id(packet.packet_id)
        return (0x62 if kind == p.PUBREL else kind << 4), [packet.packet_id], None
    if kind == p.SUBSCRIBE:
        _check_id(packet.packet_id)
        _check(len(packet.topics) > 0, "SUBSCRIBE without filters")
        parts = [packet.packet_id]
        for filter_, qos in packet.topics:
            parts.append(_text(filter_, "topic filter"))
            reason = filter_error(filter_)
            _check(reason is None, reason or "")
            _check_qos(qos, "SUBSCRIBE")
            parts.append((bytes((qos,)),))
        return 0x82, parts, None
    if kind == p.UNSUBSCRIBE:
        _check_id(packet.packet_id)
        _check(len(packet.filters) > 0, "UNSUBSCRIBE without filters")
        parts = [packet.packet_id]
        for filter_ in packet.filters:
            parts.append(_text(filter_, "topic filter"))
            reason = filter_error(filter_)
            _check(reason is None, reason or "")
        return 0xA2, parts, None
    _check(kind == p.CONNECT, "cannot encode %r (a broker's packet: server_codec.py)" % (packet,))
    return 0x10, _connect_parts(packet), None


def _connect_parts(packet):
    client_id = _text(packet.client_id, "client id")
    _check(client_id or packet.clean_session, "empty client id needs clean session [MQTT-3.1.3-7]")
    keepalive = packet.keepalive_s
    _check(isinstance(keepalive, int) and 0 <= keepalive <= _MAX_U16, "keepalive not in 0..65535 s")
    flags = 2 if packet.clean_session else 0
    tail = [client_id]
    will = packet.will
    if will is not None:
        _check_qos(will.qos, "will")
        tail.append(_text(will.topic, "will topic"))
        reason = topic_error(will.topic)
        _check(reason is None, "will " + (reason or ""))
        tail.append(_binary(will.payload, "will payload"))
        flags |= 4 | (will.qos << 3) | (0x20 if will.retain else 0)
    if packet.username is not None:
        flags |= 0x80
        tail.append(_text(packet.username, "user name"))
    if packet.password is not None:
        _check(packet.username is not None, "password without user name [MQTT-3.1.2-22]")
        flags |= 0x40
        tail.append(_binary(packet.password, "password"))
    head = [b"MQTT", (bytes((p.PROTOCOL_LEVEL, flags)),), keepalive]
    return head + tail


def _parts_size(parts):
    size = 0
    for part in parts:
        if isinstance(part, int):
            size += 2
        elif isinstance(part, tuple):
            size += len(part[0])
        else:
            size += 2 + len(part)
    return size


def _put_parts(buf, index, parts):
    for part in parts:
        if isinstance(part, int):
            index = _put_u16(buf, index, part)
        elif isinstance(part, tuple):
            end = index + len(part[0])
            buf[index:end] = part[0]
            index = end
        else:
            index = _put_field(buf, index, part)
    return index


def _simple(packet):
    kind = packet.TYPE
    if kind == p.PINGREQ:
        return _PINGREQ
    if kind == p.DISCONNECT:
        return _DISCONNECT
    return None


def encode(packet):
    """The packet as a tuple of bytes-like pieces, to be written in order."""
    simple = _simple(packet)
    if simple is not None:
        return (simple,)
    first, parts, payload = _fields(packet)
    body = _parts_size(parts)
    total = body + (len(payload) if payload is not None else 0)
    head = bytearray(1 + _length_size(total) + body)
    _put_parts(head, _put_header(head, first, total), parts)
    if payload:
        return head, payload
    return (head,)


def encoded_size(packet):
    """The packet's size on the wire, in bytes (validates it, as encode does)."""
    simple = _simple(packet)
    if simple is not None:
        return len(simple)
    first, parts, payload = _fields(packet)
    total = _parts_size(parts) + (len(payload) if payload is not None else 0)
    return 1 + _length_size(total) + total


def encode_into(packet, buffer):
    """Write the whole packet into `buffer` (bytearray or memoryview); returns its
    size. LimitExceeded if it does not fit, before anything is written."""
    if packet.TYPE == p.PUBLISH:
        return _publish_into(packet, buffer)
    simple = _simple(packet)
    if simple is not None:
        _fits(len(simple), buffer)
        buffer[0:len(simple)] = simple
        return len(simple)
    first, parts, payload = _fields(packet)
    total = _parts_size(parts) + (len(payload) if payload is not None else 0)
    size = 1 + _length_size(total) + total
    _fits(size, buffer)
    index = _put_parts(buffer, _put_header(buffer, first, total), parts)
    if payload:
        buffer[index:size] = payload
    return size


def _fits(size, buffer):
    if size > len(buffer):
        raise LimitExceeded("packet of %d bytes for the send buffer" % size, len(buffer))
