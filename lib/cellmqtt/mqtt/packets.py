"""The 14 control packets of MQTT 3.1.1 as plain data objects.

Decoded packets may hold memoryviews into the decoder's buffer (PUBLISH payload):
they are valid until the next call to the decoder's feed() or next_packet().
Equality and a repr of the fields are for tests and PC tools: server_codec.py adds
them (a board never compares packets).
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


class Packet:
    TYPE = 0


class Will:
    """The last will: published by the broker when the link dies without DISCONNECT."""

    def __init__(self, topic, payload, qos=0, retain=False):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain


class Connect(Packet):
    TYPE = CONNECT

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
    TYPE = CONNACK

    def __init__(self, session_present=False, return_code=0):
        self.session_present = session_present
        self.return_code = return_code


class Publish(Packet):
    TYPE = PUBLISH

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

    def __init__(self, topic, size, qos=0, retain=False, dup=False, packet_id=None):
        Publish.__init__(self, topic, b"", qos, retain, dup, packet_id)
        self.size = size


class Bare(Packet):
    """A packet of a type and at most a packet id: PUBACK, PUBREC, PUBREL, PUBCOMP and
    UNSUBACK carry one; PINGREQ, PINGRESP and DISCONNECT none (one shared instance each)."""

    def __init__(self, kind, packet_id=None):
        self.TYPE = kind
        self.packet_id = packet_id


class Subscribe(Packet):
    TYPE = SUBSCRIBE

    def __init__(self, packet_id, topics):
        self.packet_id = packet_id
        self.topics = topics  # [(filter, qos), ...]


class Suback(Packet):
    TYPE = SUBACK

    def __init__(self, packet_id, return_codes):
        self.packet_id = packet_id
        self.return_codes = return_codes  # granted qos 0-2 or SUBACK_FAILURE


class Unsubscribe(Packet):
    TYPE = UNSUBSCRIBE

    def __init__(self, packet_id, filters):
        self.packet_id = packet_id
        self.filters = filters


PINGREQ_PACKET = Bare(PINGREQ)
PINGRESP_PACKET = Bare(PINGRESP)
DISCONNECT_PACKET = Bare(DISCONNECT)
