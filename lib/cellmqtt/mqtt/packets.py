"""The 14 control packets of MQTT 3.1.1 as plain data objects.

Decoded packets may hold memoryviews into the decoder's buffer (PUBLISH payload):
they are valid until the next call to the decoder's feed() or next_packet().
"""

from .._const import const

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

PROTOCOL_NAME = "MQTT"
PROTOCOL_LEVEL = const(4)  # 3.1.1
SUBACK_FAILURE = const(0x80)

# CONNACK return codes 1-5 [MQTT-3.2.2-3], Table 3.1
REFUSAL_NAMES = (
    None,
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorized",
)


def _plain(value):
    if isinstance(value, (memoryview, bytearray)):
        return bytes(value)
    return value


class Packet:
    __slots__ = ()
    TYPE = 0
    FIELDS: tuple = ()

    def __eq__(self, other):
        if type(self) is not type(other):
            return False
        for name in self.FIELDS:
            if _plain(getattr(self, name)) != _plain(getattr(other, name)):
                return False
        return True

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        parts = ["%s=%r" % (name, _plain(getattr(self, name))) for name in self.FIELDS]
        return "%s(%s)" % (type(self).__name__, ", ".join(parts))


class Will:
    """The last will: published by the broker when the link dies without DISCONNECT."""

    __slots__ = ("topic", "payload", "qos", "retain")

    def __init__(self, topic, payload, qos=0, retain=False):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain

    def __eq__(self, other):
        return (isinstance(other, Will) and self.topic == other.topic and self.qos == other.qos
                and self.retain == other.retain and _plain(self.payload) == _plain(other.payload))

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "Will(%r, %r, qos=%d, retain=%r)" % (self.topic, _plain(self.payload), self.qos, self.retain)


class Connect(Packet):
    __slots__ = ("client_id", "clean_session", "keepalive_s", "will", "username", "password")
    TYPE = CONNECT
    FIELDS = __slots__

    def __init__(self, client_id, clean_session=True, keepalive_s=60, will=None, username=None,
                 password=None):
        self.client_id = client_id
        self.clean_session = clean_session
        self.keepalive_s = keepalive_s
        self.will = will
        self.username = username
        self.password = password

    def __repr__(self):  # credentials never show in a repr (logs, test failures)
        return "Connect(client_id=%r, clean_session=%r, keepalive_s=%r, will=%r, username=%s, password=%s)" % (
            self.client_id, self.clean_session, self.keepalive_s, self.will,
            "None" if self.username is None else "<set>", "None" if self.password is None else "<set>")


class Connack(Packet):
    __slots__ = ("session_present", "return_code")
    TYPE = CONNACK
    FIELDS = __slots__

    def __init__(self, session_present=False, return_code=0):
        self.session_present = session_present
        self.return_code = return_code


class Publish(Packet):
    __slots__ = ("topic", "payload", "qos", "retain", "dup", "packet_id")
    TYPE = PUBLISH
    FIELDS = __slots__

    def __init__(self, topic, payload=b"", qos=0, retain=False, dup=False, packet_id=None):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packet_id = packet_id


class Skipped(Publish):
    """A PUBLISH larger than the client's max_packet, read past unkept: acknowledged as
    its QoS requires, never delivered; `size` is the whole packet's."""

    __slots__ = ("size",)
    FIELDS: tuple = Publish.FIELDS + __slots__

    def __init__(self, topic, size, qos=0, retain=False, dup=False, packet_id=None):
        Publish.__init__(self, topic, b"", qos, retain, dup, packet_id)
        self.size = size


class _IdOnly(Packet):
    """The acknowledgements that carry nothing but a packet id."""

    __slots__ = ("packet_id",)
    FIELDS = __slots__

    def __init__(self, packet_id):
        self.packet_id = packet_id


class Puback(_IdOnly):
    TYPE = PUBACK


class Pubrec(_IdOnly):
    TYPE = PUBREC


class Pubrel(_IdOnly):
    TYPE = PUBREL


class Pubcomp(_IdOnly):
    TYPE = PUBCOMP


class Unsuback(_IdOnly):
    TYPE = UNSUBACK


class Subscribe(Packet):
    __slots__ = ("packet_id", "topics")  # topics: list of (filter, qos)
    TYPE = SUBSCRIBE
    FIELDS = __slots__

    def __init__(self, packet_id, topics):
        self.packet_id = packet_id
        self.topics = topics


class Suback(Packet):
    __slots__ = ("packet_id", "return_codes")  # granted qos 0-2 or SUBACK_FAILURE
    TYPE = SUBACK
    FIELDS = __slots__

    def __init__(self, packet_id, return_codes):
        self.packet_id = packet_id
        self.return_codes = return_codes


class Unsubscribe(Packet):
    __slots__ = ("packet_id", "filters")
    TYPE = UNSUBSCRIBE
    FIELDS = __slots__

    def __init__(self, packet_id, filters):
        self.packet_id = packet_id
        self.filters = filters


class Pingreq(Packet):
    TYPE = PINGREQ


class Pingresp(Packet):
    TYPE = PINGRESP


class Disconnect(Packet):
    TYPE = DISCONNECT


# The empty packets carry no data: one shared instance each, so none is allocated per use.
PINGREQ_PACKET = Pingreq()
PINGRESP_PACKET = Pingresp()
DISCONNECT_PACKET = Disconnect()
