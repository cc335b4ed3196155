"""A misbehaving broker in front of a real one: a loopback TCP proxy that passes MQTT
packets through whole, and on request refuses CONNECT, cuts the connection in the
middle of a PUBLISH, swallows PUBACKs, or runs a callback at the first PUBLISH (a
broker restart). Set `mode` before the client connects; stop() closes everything."""

import socket
import threading

PASS = "pass"
REFUSE = "refuse"  # CONNACK with return code `refuse_code`, then close
CUT_PUBLISH = "cut_publish"  # half of the first PUBLISH reaches the broker, then both close
DROP_PUBACK = "drop_puback"  # the broker's PUBACKs never reach the client
ON_PUBLISH = "on_publish"  # at the first PUBLISH: on_publish() runs, then both close

_PUBLISH = 3
_PUBACK = 4
_READ_TIMEOUT_S = 30.0  # a test's connections are short; a stuck one ends anyway


def _read_packet(sock):
    """One whole MQTT packet (fixed header included), or b"" at the end."""
    head = sock.recv(1)
    if not head:
        return b""
    packet = bytearray(head)
    length, shift = 0, 0
    while True:
        byte = sock.recv(1)
        if not byte:
            return b""
        packet += byte
        length += (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            break
    while len(packet) < 1 + (shift // 7) + length:
        chunk = sock.recv(1 + shift // 7 + length - len(packet))
        if not chunk:
            return b""
        packet += chunk
    return bytes(packet)


class MqttProxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.mode = PASS
        self.refuse_code = 5  # not authorised
        self.on_publish = None
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self._listener.getsockname()[1]
        self._sockets = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client, self.mode), daemon=True).start()

    def _serve(self, client, mode):
        client.settimeout(_READ_TIMEOUT_S)
        self._track(client)
        if mode == REFUSE:
            if _read_packet(client):
                client.sendall(bytes((0x20, 2, 0, self.refuse_code)))
            self._close(client)
            return
        host, _, port = self.upstream.rpartition(":")
        try:
            broker = socket.create_connection((host, int(port)), timeout=_READ_TIMEOUT_S)
        except OSError:
            self._close(client)
            return
        self._track(broker)
        threading.Thread(target=self._pump, args=(broker, client, mode, False), daemon=True).start()
        self._pump(client, broker, mode, True)

    def _pump(self, source, sink, mode, from_client):
        try:
            while True:
                packet = _read_packet(source)
                if not packet:
                    break
                kind = packet[0] >> 4
                if from_client and kind == _PUBLISH and mode == CUT_PUBLISH:
                    sink.sendall(packet[:len(packet) // 2])
                    break
                if from_client and kind == _PUBLISH and mode == ON_PUBLISH:
                    self.on_publish()
                    break
                if not from_client and kind == _PUBACK and mode == DROP_PUBACK:
                    continue
                sink.sendall(packet)
        except OSError:
            pass
        self._close(source)
        self._close(sink)

    def _track(self, sock):
        with self._lock:
            self._sockets.add(sock)

    def _close(self, sock):
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def stop(self):
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone leaves blocked
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)
        self._thread.join(5)
