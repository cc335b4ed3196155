"""The MQTT 3.1.1 encoder (sans-IO): packet objects to bytes.

    head, rest = encode(packet, buffer)   # write head, then rest unless None

The packet is laid out in the caller's buffer and head is a view of it. A PUBLISH
whose payload does not fit after its header leaves the payload as rest, never
copied; should even the rest of a packet not fit (a CONNECT with a long will or
password), head is a new bytearray of its size.
What we must not send raises LocalProtocolError before anything is written.
"""

from .._const import const
from ..errors import LocalProtocolError
from . import packets as p
from .topic import filter_error, topic_error

_MAX_REMAINING = const(268435455)  # 4 length bytes [MQTT-2.2.3]
_MAX_U16 = const(65535)


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
    if not (type(packet_id) is int and 0 < packet_id <= _MAX_U16):  # the message only when it fails
        raise LocalProtocolError("packet id %r not in 1..65535" % (packet_id,))


def _check_qos(qos, what):
    if qos not in (0, 1, 2):
        raise LocalProtocolError("%s QoS %r not 0, 1 or 2" % (what, qos))


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


_topic_cache = [None, b""]  # the last topic name checked, and its bytes: most PUBLISHes repeat it


def _topic_bytes(topic):
    """A topic name's bytes, checked; the last one is kept."""
    cache = _topic_cache
    if type(topic) is str and topic == cache[0]:
        return cache[1]
    data = _text(topic, "topic")
    reason = topic_error(topic)
    _check(reason is None, reason or "")
    cache[0] = topic
    cache[1] = data
    return data


def _layout(packet):
    """(first byte, parts, payload or None): the packet's layout, checked. Parts are
    ints (one u16) or bytes (length-prefixed) or a 1-tuple (raw bytes); a PUBLISH
    payload comes raw after them."""
    kind = packet.TYPE
    if kind == p.PUBLISH:
        topic = _topic_bytes(packet.topic)
        qos = packet.qos
        _check_qos(qos, "PUBLISH")
        payload = packet.payload
        if not (payload is None or isinstance(payload, (bytes, bytearray, memoryview))):
            raise LocalProtocolError("payload must be bytes, bytearray or memoryview, not %s" % type(payload).__name__)
        first = 0x30 | (qos << 1) | (1 if packet.retain else 0)
        if not qos:
            _check(packet.packet_id is None and not packet.dup, "QoS 0 PUBLISH with packet id or DUP")
            return first, (topic,), payload
        _check_id(packet.packet_id)
        return first | (8 if packet.dup else 0), (topic, packet.packet_id), payload
    if kind in (p.PUBACK, p.PUBREC, p.PUBREL, p.PUBCOMP, p.UNSUBACK):
        _check_id(packet.packet_id)
        return (0x62 if kind == p.PUBREL else kind << 4), (packet.packet_id,), None
    if kind == p.PINGREQ or kind == p.DISCONNECT:
        return kind << 4, (), None
    if kind == p.SUBSCRIBE or kind == p.UNSUBSCRIBE:
        _check_id(packet.packet_id)
        subscribe = kind == p.SUBSCRIBE
        filters = packet.topics if subscribe else packet.filters
        _check(len(filters) > 0, "SUBSCRIBE or UNSUBSCRIBE without filters")
        parts = [packet.packet_id]
        for filter_ in filters:
            if subscribe:
                filter_, qos = filter_
                _check_qos(qos, "SUBSCRIBE")
            parts.append(_text(filter_, "topic filter"))
            reason = filter_error(filter_)
            _check(reason is None, reason or "")
            if subscribe:
                parts.append((bytes((qos,)),))
        return 0x82 if subscribe else 0xA2, parts, None
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
    return [b"MQTT", (bytes((p.PROTOCOL_LEVEL, flags)),), keepalive] + tail


def encode(packet, buffer):
    """(head, rest): the packet's bytes, to be written head first, then rest unless None."""
    first, parts, payload = _layout(packet)
    body = 0
    for part in parts:
        body += 2 if type(part) is int else len(part[0]) if type(part) is tuple else 2 + len(part)
    total = body + (len(payload) if payload else 0)
    _check(total <= _MAX_REMAINING, "packet too large for MQTT")
    index = 2 + (total > 127) + (total > 16383) + (total > 2097151)  # the fixed header's size
    size = index + total
    rest = None
    if size > len(buffer):
        rest = payload
        size = index + body
        if size > len(buffer):
            buffer = bytearray(size)
    _put_header(buffer, first, total)
    for part in parts:
        if type(part) is int:
            buffer[index] = part >> 8
            buffer[index + 1] = part & 255
            index += 2
            continue
        if type(part) is tuple:
            part = part[0]
        else:
            buffer[index] = len(part) >> 8
            buffer[index + 1] = len(part) & 255
            index += 2
        buffer[index:index + len(part)] = part
        index += len(part)
    if payload and rest is None:
        buffer[index:size] = payload
    return (buffer if size == len(buffer) else buffer[:size]), rest
