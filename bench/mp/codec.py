# Codec throughput of the library, on CPython (imported by the bench) and on the
# MicroPython unix port (run as a script): the workload's PUBLISH (QoS 1, 200-byte
# payload) encoded from its fields into the send buffer, and decoded from one whole
# packet per feed into a message the application gets (topic str, payload bytes).
import time

from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt.packets import Decoder
from cellmqtt.mqtt.packets import encode

TOPIC = "bench/0001/up"
PAYLOAD = bytes(200)
_BATCH = 200  # operations between two clock readings

try:
    _ticks_us = time.ticks_us
    _diff = time.ticks_diff
except AttributeError:  # CPython
    def _ticks_us():
        return int(time.perf_counter() * 1000000)

    def _diff(end, start):
        return end - start


def sample_packet():
    head, rest = encode(p.Publish(TOPIC, PAYLOAD, 1, False, False, 1), bytearray(512))
    return bytes(head) + bytes(rest or b"")


def encode_rate(seconds):
    """PUBLISH packets encoded per second."""
    buffer = memoryview(bytearray(512))  # as the client's send buffer
    done = 0
    start = _ticks_us()
    while True:
        for packet_id in range(1, _BATCH + 1):
            encode(p.Publish(TOPIC, PAYLOAD, 1, False, False, packet_id), buffer)
        done += _BATCH
        elapsed = _diff(_ticks_us(), start)
        if elapsed >= seconds * 1000000:
            return done * 1000000 / elapsed


def decode_rate(seconds):
    """PUBLISH packets decoded per second."""
    data = sample_packet()
    decoder = Decoder()
    done = 0
    start = _ticks_us()
    while True:
        for _ in range(_BATCH):
            decoder.feed(data)
            packet = decoder.next_packet()
            message = (packet.topic, bytes(packet.payload))
            decoder.next_packet()
        done += _BATCH
        elapsed = _diff(_ticks_us(), start)
        if elapsed >= seconds * 1000000:
            if message[1] != PAYLOAD:
                raise AssertionError("decoded the wrong payload")
            return done * 1000000 / elapsed


if __name__ == "__main__":
    import sys

    options = {}
    for item in sys.argv[1:]:
        key, _, value = item.partition("=")
        options[key] = value
    seconds = float(options.get("seconds", "1"))
    best_encode = best_decode = 0
    for _ in range(int(options.get("rounds", "3"))):
        best_encode = max(best_encode, encode_rate(seconds))
        best_decode = max(best_decode, decode_rate(seconds))
    print("RESULT encode %d" % best_encode)
    print("RESULT decode %d" % best_decode)
    print("RESULT done 1")
