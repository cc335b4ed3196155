"""The protocol minimum of the workload: MQTT 3.1.1 packet sizes from the packet
formats (section 2 and 3 of the standard), with no library's encoder involved.

A packet is a fixed header (1 byte + the remaining length in 1-4 bytes of 7 bits)
and `remaining` bytes of variable header and payload."""

CONNECT_VARIABLE_HEADER = 10  # "MQTT" as a 2+4 byte string, level, flags, keepalive (3.1.2)
PACKET_ID = 2


def length_bytes(remaining):
    """Bytes of the remaining-length field (2.2.3)."""
    if remaining < 0 or remaining > 268435455:
        raise ValueError("remaining length %d out of range" % remaining)
    size = 1
    while remaining >= 128:
        remaining >>= 7
        size += 1
    return size


def packet(remaining):
    return 1 + length_bytes(remaining) + remaining


def string(text):
    """A UTF-8 string field: 2 length bytes and the encoded text (1.5.3)."""
    return 2 + len(text.encode("utf-8"))


def connect(client_id, will_topic=None, will_payload=b"", username=None, password=None):
    remaining = CONNECT_VARIABLE_HEADER + string(client_id)
    if will_topic is not None:
        remaining += string(will_topic) + 2 + len(will_payload)
    if username is not None:
        remaining += string(username)
    if password is not None:
        remaining += 2 + len(password)
    return packet(remaining)


def connack():
    return packet(2)


def publish(topic, payload_bytes, qos):
    return packet(string(topic) + (PACKET_ID if qos else 0) + payload_bytes)


def ack():
    """PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: a packet id only."""
    return packet(PACKET_ID)


def subscribe(filters):
    return packet(PACKET_ID + sum(string(name) + 1 for name in filters))


def suback(count):
    return packet(PACKET_ID + count)


def disconnect():
    return packet(0)


def cycle(work, downlink_bytes):
    """{"sent": bytes, "received": bytes} of one workload cycle at its least: CONNECT,
    SUBSCRIBE, the publishes (QoS work.qos), a PUBACK per downlink message at QoS 1,
    DISCONNECT; CONNACK, SUBACK, a PUBACK per QoS 1 publish, the downlink messages
    (delivered at the subscription's QoS, the helper publishing at QoS 1)."""
    qos = work.qos
    sent = connect(work.client_id) + subscribe([work.down]) + disconnect()
    sent += sum(publish(work.up, len(payload), qos) for payload in work.payloads)
    received = connack() + suback(1) + work.downlinks * publish(work.down, downlink_bytes, qos)
    if qos:
        received += len(work.payloads) * ack()
        sent += work.downlinks * ack()
    return {"sent": sent, "received": received}
