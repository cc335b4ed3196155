"""The broker's half of the MQTT 3.1.1 codec, for PC tools and tests (the fake
brokers, the bench, the codec's golden tests): decode what a client sends (CONNECT,
SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT) and encode what only a broker sends
(CONNACK, SUBACK, PINGRESP). A client never needs it, so a board never gets it
(tools/board_files.py PC_ONLY): its code would only take heap.

    decoder = ServerDecoder(max_packet)     # every packet type
    encode(packet), encoded_size(packet), encode_into(packet, buffer)   # likewise
    Connack(...), Suback(...), Skipped(...)  # what the client's decoder gives (a Bare or
                                             # a Publish with their fields): a board never makes one

Importing it also gives packets equality and a repr of their fields (credentials shown
only as <set>), for asserts and logs (packets.py leaves them out: a board never compares
packets, and its default repr shows no field at all).
"""

from ..errors import LimitExceeded, LocalProtocolError, RemoteProtocolError
from . import packets as p
from .rare import Unsubscribe
from .packets import Decoder, _check_u16, _packet_id, _string, _u16
from .topic import filter_error, topic_error


def _check(condition, reason):
    if not condition:
        raise LocalProtocolError(reason)


def _put_header(buf, first, remaining):
    """Writes a fixed header at buf[0]; returns its length (packets.encode writes its own)."""
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


def _plain(value):
    return bytes(value) if isinstance(value, (memoryview, bytearray)) else value


def _fields(obj):
    return {name: _plain(value) for name, value in obj.__dict__.items()}


def _equal(self, other):
    return type(self) is type(other) and _fields(self) == _fields(other)


def _shown(name, value):
    if name in ("username", "password"):  # credentials never show in a repr (logs, test failures)
        return "None" if value is None else "<set>"
    return repr(value)


def _repr(self):
    fields = sorted(_fields(self).items())
    return "%s(%s)" % (type(self).__name__, ", ".join("%s=%s" % (name, _shown(name, value)) for name, value in fields))


for _cls in (p.Will, p.Connect, p.Publish, p.Bare, p.Subscribe, Unsubscribe):
    _cls.__eq__ = _equal  # type: ignore[method-assign,assignment]
    _cls.__repr__ = _repr  # type: ignore[method-assign,assignment]


def Connack(session_present=False, return_code=0):
    """A CONNACK as the client's decoder gives it."""
    packet = p.Bare(p.CONNACK)
    packet.session_present = session_present
    packet.return_code = return_code
    return packet


def Suback(packet_id, return_codes):
    """A SUBACK as the client's decoder gives it."""
    packet = p.Bare(p.SUBACK, packet_id)
    packet.return_codes = return_codes
    return packet


def Skipped(topic, size, qos=0, retain=False, dup=False, packet_id=None):
    """The Publish the client's decoder gives for one of `size` bytes over max_packet."""
    packet = p.Publish(topic, None, qos, retain, dup, packet_id)
    packet.size = size
    return packet


def parse(packet, head):
    """Any packet, what a client sends too."""
    kind = packet[0] >> 4
    body = packet[head:]
    if kind == p.CONNECT:
        return _parse_connect(body)
    if kind == p.SUBSCRIBE:
        return _parse_subscribe(body)
    if kind == p.UNSUBSCRIBE:
        return _parse_unsubscribe(body)
    if kind == p.PINGREQ or kind == p.DISCONNECT:
        return p.PINGREQ_PACKET if kind == p.PINGREQ else p.DISCONNECT_PACKET
    return p.parse(packet, head)


class ServerDecoder(Decoder):
    """A decoder for a broker's side: what a client sends, and what a server sends."""

    def __init__(self, max_packet=p.DEFAULT_MAX_PACKET):
        Decoder.__init__(self, max_packet)
        self._parse = parse


def _broker_bytes(packet):
    """The bytes of a CONNACK, SUBACK or PINGRESP, checked; None for any other packet."""
    kind = packet.TYPE
    if kind == p.PINGRESP:
        return b"\xd0\x00"
    if kind == p.CONNACK:
        code = packet.return_code
        _check(code in (0, 1, 2, 3, 4, 5), "CONNACK return code %r" % (code,))
        _check(not (code and packet.session_present), "session present with a refusal")
        return bytes((0x20, 2, 1 if packet.session_present else 0, code))
    if kind == p.SUBACK:
        _check_u16(packet.packet_id, "packet id")
        codes = packet.return_codes
        _check(len(codes) > 0, "SUBACK without return codes")
        for code in codes:
            _check(code in (0, 1, 2, p.SUBACK_FAILURE), "SUBACK return code %r" % (code,))
        total = 2 + len(codes)
        out = bytearray(5 + total)  # room for the longest fixed header
        index = _put_header(out, 0x90, total)
        out[index] = packet.packet_id >> 8
        out[index + 1] = packet.packet_id & 255
        end = index + total
        out[index + 2:end] = bytes(codes)
        return bytes(out[:end])
    return None


def encode(packet):
    """The packet as a tuple of bytes-like pieces, to be written in order (a PUBLISH
    payload is its own piece, never copied)."""
    data = _broker_bytes(packet)
    if data is not None:
        return (data,)
    head, rest = p.encode(packet, b"")  # no room: the head comes in a new bytearray
    return (head, rest) if rest else (head,)


def encoded_size(packet):
    """The packet's size on the wire, in bytes (validates it, as encode does)."""
    return sum(len(piece) for piece in encode(packet))


def encode_into(packet, buffer):
    """Write the whole packet into `buffer`; returns its size. LimitExceeded if it does
    not fit, before anything is written."""
    size = encoded_size(packet)
    if size > len(buffer):
        raise LimitExceeded("packet of %d bytes for the send buffer" % size, len(buffer))
    data = _broker_bytes(packet)
    if data is None:
        p.encode(packet, buffer)
    else:
        buffer[0:size] = data
    return size


def _binary(body, index):
    start = index + 2
    end = start + _u16(body, index)
    if end > len(body):
        raise RemoteProtocolError("field runs past the packet end")
    return bytes(body[start:end]), end


def _filters(body, with_qos, kind, rule):
    """(packet id, [(filter, qos) or filter, ...]) of a SUBSCRIBE or UNSUBSCRIBE body."""
    packet_id = _packet_id(body, 0)
    index = 2
    found = []
    while index < len(body):
        filter_, index = _string(body, index)
        reason = filter_error(filter_)
        if reason is not None:
            raise RemoteProtocolError(reason)
        if not with_qos:
            found.append(filter_)
            continue
        if index >= len(body):
            raise RemoteProtocolError("SUBSCRIBE filter without QoS")
        qos = body[index]
        if qos > 2:
            raise RemoteProtocolError("SUBSCRIBE QoS byte 0x%x [MQTT-3.8.3-4]" % qos)
        found.append((filter_, qos))
        index += 1
    if not found:
        raise RemoteProtocolError("%s without filters [%s]" % (kind, rule))
    return packet_id, found


def _parse_subscribe(body):
    return p.Subscribe(*_filters(body, True, "SUBSCRIBE", "MQTT-3.8.3-3"))


def _parse_unsubscribe(body):
    return Unsubscribe(*_filters(body, False, "UNSUBSCRIBE", "MQTT-3.10.3-2"))


def _parse_connect(body):
    name, index = _string(body, 0)
    if name != "MQTT":
        raise RemoteProtocolError("protocol name %r [MQTT-3.1.2-1]" % name)
    if index + 4 > len(body):
        raise RemoteProtocolError("CONNECT variable header cut short")
    level = body[index]
    flags = body[index + 1]
    keepalive_s = _u16(body, index + 2)
    index += 4
    if level != 4:  # 3.1.1
        raise RemoteProtocolError("protocol level %d, not 4 [MQTT-3.1.2-2]" % level)
    will_flag = flags & 4
    will_qos = (flags >> 3) & 3
    if flags & 1:
        raise RemoteProtocolError("CONNECT reserved flag [MQTT-3.1.2-3]")
    if will_qos == 3 or (not will_flag and flags & 0x38):
        raise RemoteProtocolError("CONNECT will flags 0x%x [MQTT-3.1.2-11..15]" % flags)
    if flags & 0x40 and not flags & 0x80:
        raise RemoteProtocolError("password without user name [MQTT-3.1.2-22]")
    client_id, index = _string(body, index)
    will = username = password = None
    if will_flag:
        topic, index = _string(body, index)
        reason = topic_error(topic)
        if reason is not None:
            raise RemoteProtocolError("will " + reason)
        payload, index = _binary(body, index)
        will = p.Will(topic, payload, will_qos, bool(flags & 0x20))
    if flags & 0x80:
        username, index = _string(body, index)
    if flags & 0x40:
        password, index = _binary(body, index)
    if index != len(body):
        raise RemoteProtocolError("CONNECT with %d extra bytes" % (len(body) - index))
    return p.Connect(client_id, bool(flags & 2), keepalive_s, will, username, password)
