"""The workload's far end: a subscriber on the broker that answers the last uplink
message of each cycle (payload starting with "9") with the cycle's two downlink
messages, QoS 1, on the client's down topic. A blocking socket on a thread of its
own, speaking MQTT through the library's sans-IO codec."""

import socket
import threading

from cellmqtt.errors import CellMqttError
from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt.packets import Decoder
from cellmqtt.mqtt.server_codec import encode

DOWNLINK_BYTES = 64
DOWNLINKS = 2
LAST_UPLINK = ord("9")
_TIMEOUT_S = 10


class Helper:
    def __init__(self, broker):
        host, _, port = broker.rpartition(":")
        self._address = (host, int(port))
        self._sock = None
        self._thread = None
        self._next_id = 0
        self._stopping = False
        self.answered = 0
        self.error = None

    def start(self):
        sock = socket.create_connection(self._address, timeout=_TIMEOUT_S)
        self._sock = sock
        decoder = Decoder(max_packet=4096)
        self._send(p.Connect("bench-helper", True, 0))
        self._send(p.Subscribe(self._id(), [("bench/+/up", 0)]))
        waiting = {p.CONNACK, p.SUBACK}
        while waiting:
            for packet in self._receive(decoder):
                waiting.discard(packet.TYPE)
        sock.settimeout(None)  # from here on the thread waits for uplinks as long as it runs
        self._thread = threading.Thread(target=self._serve, args=(decoder,), daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping = True
        if self._sock is not None:
            try:
                self._send(p.DISCONNECT_PACKET)
            except OSError:
                pass
            self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(_TIMEOUT_S)
            self._thread = None

    def _id(self):
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def _send(self, packet):
        self._sock.sendall(b"".join(bytes(piece) for piece in encode(packet)))

    def _receive(self, decoder):
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("the broker closed the helper's connection")
        decoder.feed(data)
        packets = []
        while True:
            packet = decoder.next_packet()
            if packet is None:
                return packets
            if packet.TYPE == p.PUBLISH:  # keep what we need: the view dies at the next call
                packet = p.Publish(packet.topic, bytes(packet.payload[:1]))
            packets.append(packet)

    def _serve(self, decoder):
        try:
            while not self._stopping:
                for packet in self._receive(decoder):
                    if packet.TYPE == p.PUBLISH and packet.payload[:1] == bytes((LAST_UPLINK,)):
                        self._answer(packet.topic)
        except (OSError, CellMqttError) as error:
            if not self._stopping:
                self.error = error

    def _answer(self, up_topic):
        down = up_topic[:-len("up")] + "down"
        for index in range(DOWNLINKS):
            payload = bytes((ord("a") + index,)) * DOWNLINK_BYTES
            self._send(p.Publish(down, payload, 1, False, False, self._id()))
        self.answered += 1
