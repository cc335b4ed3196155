"""paho-mqtt's packet code on the same two jobs as bench/mp/codec.py: building the
workload's PUBLISH from its fields (Client._send_publish, its queueing stubbed out),
and reading one from the socket into a message (Client._packet_read over an in-memory
socket: its framing, then _packet_handle and _handle_publish's decode_publish and
MQTTMessage; delivery to callbacks and the PUBACK are stubbed out, as they are not
part of our decode either)."""

import time

import paho.mqtt.client as mqtt

from bench.mp import codec

_BATCH = 200
_SUCCESS = mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


def _client():
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench", protocol=mqtt.MQTTv311)
    client._sock = object()  # _send_publish refuses without a socket; nothing is sent
    return client


def _rate(job, seconds):
    done = 0
    start = time.perf_counter()
    while True:
        job()
        done += _BATCH
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def encode_rate(seconds):
    client = _client()
    built = []

    def queue(command, packet, mid, qos, info=None):
        built.append(packet)
        return _SUCCESS

    client._packet_queue = queue
    topic = codec.TOPIC.encode()

    def job():
        del built[:]
        for mid in range(1, _BATCH + 1):
            client._send_publish(mid, topic, codec.PAYLOAD, 1, False, False)

    try:
        rate = _rate(job, seconds)
    finally:
        client._sock = None
    if bytes(built[0]) != codec.sample_packet():
        raise AssertionError("paho built another packet than ours: %r" % bytes(built[0]))
    return rate


def decode_rate(seconds):
    client = _client()
    data = codec.sample_packet()
    stream = memoryview(data * _BATCH)
    position = [0]
    messages = []

    def recv(size):
        start = position[0]
        position[0] = start + size
        return stream[start:start + size].tobytes()

    client._sock_recv = recv
    client._handle_on_message = messages.append
    client._send_puback = lambda mid: _SUCCESS

    def job():
        position[0] = 0
        del messages[:]
        for _ in range(_BATCH):
            client._packet_read()

    try:
        rate = _rate(job, seconds)
    finally:
        client._sock = None
    if len(messages) != _BATCH or messages[0].payload != codec.PAYLOAD or messages[0].topic != codec.TOPIC:
        raise AssertionError("paho decoded something else")
    return rate
