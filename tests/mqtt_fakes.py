# An in-memory broker for the MQTT client tests, on both runtimes: Stream pairs that
# count what is open, a gate that can hold any stream operation (to force every
# interleaving of connect and disconnect), a scripted peer and a small broker.
import asyncio

from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt import server_codec as sc
from cellmqtt.mqtt.server_codec import ServerDecoder, encode
from cellmqtt.mqtt.topic import matches

WAIT_S = 3  # no fake operation takes this long unless something is stuck


class _Pipe:
    def __init__(self):
        self.chunks = []
        self.taken = 0  # bytes of chunks[0] already read: a read in pieces copies only its piece
        self.closed = False
        self.event = asyncio.Event()

    def put(self, data):
        self.chunks.append(data)
        self.event.set()

    def shut(self):
        self.closed = True
        self.event.set()


class Streams:
    """Makes stream pairs; counts open client ends; can hold the n-th operation
    (open, read, write, close on any end) until release()."""

    def __init__(self, chunk=None):
        self.chunk = chunk  # at most this many bytes per read: exercises split packets
        self.open = 0
        self.opened = 0
        self.ops = 0
        self.hold_at = 0
        self.held = None
        self.held_op = None
        self._release = None
        self.tasks = []

    def pair(self):
        to_broker = _Pipe()
        to_client = _Pipe()
        client = FakeStream(self, to_client, to_broker, "client")
        broker = FakeStream(self, to_broker, to_client, "broker")
        self.open += 1
        self.opened += 1
        return client, broker

    def hold(self, n):
        """Hold the n-th operation from now."""
        self.hold_at = self.ops + n
        self.held = asyncio.Event()
        self._release = asyncio.Event()

    def release(self):
        """Let the held operation go on; a hold not reached yet is called off."""
        self.hold_at = 0
        if self._release is not None:
            self._release.set()

    async def gate(self, what):
        self.ops += 1
        if self.ops == self.hold_at:
            self.held_op = what  # names the interleaving when an assertion fails
            self.held.set()
            await self._release.wait()

    def opener(self, broker_factory):
        """An open_stream function: each call serves a new pair with a new broker."""

        async def open_stream():
            await self.gate("open")
            client, broker_end = self.pair()
            broker = broker_factory()
            self.tasks.append(asyncio.create_task(broker.serve(broker_end)))
            return client

        return open_stream

    async def settle(self):
        """Wait for every broker task to end (their streams closed)."""
        for task in self.tasks:
            await asyncio.wait_for(task, WAIT_S)
        self.tasks = []


class FakeStream:
    def __init__(self, streams, inbox, outbox, side):
        self._streams = streams
        self._inbox = inbox
        self._outbox = outbox
        self.side = side
        self.closed = False

    async def read(self, max_bytes):
        await self._streams.gate(self.side + " read")
        inbox = self._inbox
        while not inbox.chunks:
            if inbox.closed or self.closed:
                return b""
            inbox.event.clear()
            await inbox.event.wait()
        limit = max_bytes if self._streams.chunk is None else min(max_bytes, self._streams.chunk)
        chunk = inbox.chunks[0]
        start = inbox.taken
        if len(chunk) - start <= limit:
            inbox.chunks.pop(0)
            inbox.taken = 0
            return chunk[start:] if start else chunk
        inbox.taken = start + limit
        return chunk[start:start + limit]

    async def write(self, data):
        await self._streams.gate(self.side + " write")
        if self.closed or self._outbox.closed:
            raise OSError(32, "broken pipe")
        self._outbox.put(bytes(data))  # a copy: the writer may reuse its buffer

    async def close(self):
        await self._streams.gate(self.side + " close")
        if self.closed:
            return
        self.closed = True
        if self.side == "client":
            self._streams.open -= 1
        self._inbox.shut()
        self._outbox.shut()


class Peer:
    """The broker's end, driven by hand: send packets, receive decoded packets."""

    def __init__(self, stream, max_packet=2048):
        self.stream = stream
        self.decoder = ServerDecoder(max_packet)
        self._ready = []

    async def send(self, packet):
        for piece in encode(packet):
            await self.stream.write(piece)

    async def send_raw(self, data):
        await self.stream.write(data)

    async def receive(self):
        """The next packet (PUBLISH payload copied to bytes), or None at end of stream."""
        while not self._ready:
            data = await asyncio.wait_for(self.stream.read(self.decoder.max_packet), WAIT_S)
            if not data:
                return None
            self.decoder.feed(data)
            while True:
                packet = self.decoder.next_packet()
                if packet is None:
                    break
                if packet.TYPE == p.PUBLISH:
                    packet.payload = bytes(packet.payload)
                self._ready.append(packet)
        return self._ready.pop(0)

    async def expect(self, kind):
        packet = await self.receive()
        assert packet is not None and packet.TYPE == kind, "expected type %d, got %r" % (kind, packet)
        return packet

    async def close(self):
        await self.stream.close()


class FakeBroker:
    """A small broker for one client: answers CONNECT, acknowledges, routes PUBLISH
    back to the client's own subscriptions ($ rule included), answers PINGREQ.
    Knobs: connack code and session present, which acks to withhold, SUBACK codes."""

    def __init__(self, code=0, session_present=False, withhold=(), refuse=(), pingresp=True):
        self.code = code
        self.session_present = session_present
        self.withhold = withhold  # packet types it never sends (PUBACK, PUBREC, PUBCOMP ...)
        self.refuse = refuse  # filters answered with SUBACK 0x80
        self.pingresp = pingresp
        self.received = []
        self.subscriptions = {}
        self._next_id = 1
        self.peer = None

    async def serve(self, stream):
        peer = self.peer = Peer(stream)
        try:
            while True:
                packet = await peer.receive()
                if packet is None:
                    break
                self.received.append(packet)
                try:
                    if not await self._answer(peer, packet):
                        break
                except OSError:  # the client closed: what it sent before still arrives, as over TCP
                    pass
        except asyncio.TimeoutError:
            pass
        await peer.close()

    async def _answer(self, peer, packet):
        kind = packet.TYPE
        if kind == p.CONNECT:
            await peer.send(sc.Connack(self.session_present and not self.code, self.code))
            return self.code == 0
        if kind == p.DISCONNECT:
            return False
        if kind == p.PUBLISH:
            if packet.qos == 1:
                await self._ack(peer, p.Bare(p.PUBACK, packet.packet_id))
            elif packet.qos == 2:
                await self._ack(peer, p.Bare(p.PUBREC, packet.packet_id))
            # one copy per client, at the highest QoS of its matching subscriptions
            granted = [qos for filter_, qos in self.subscriptions.items() if matches(filter_, packet.topic)]
            if granted:
                await self.deliver(packet.topic, packet.payload, min(max(granted), packet.qos), packet.retain)
        elif kind == p.PUBREL:
            await self._ack(peer, p.Bare(p.PUBCOMP, packet.packet_id))
        elif kind == p.PUBREC:
            await self._ack(peer, p.Bare(p.PUBREL, packet.packet_id))
        elif kind == p.SUBSCRIBE:
            codes = []
            for filter_, qos in packet.topics:
                if filter_ in self.refuse:
                    codes.append(p.SUBACK_FAILURE)
                else:
                    self.subscriptions[filter_] = qos
                    codes.append(qos)
            await self._ack(peer, sc.Suback(packet.packet_id, codes))
        elif kind == p.UNSUBSCRIBE:
            for filter_ in packet.filters:
                self.subscriptions.pop(filter_, None)
            await self._ack(peer, p.Bare(p.UNSUBACK, packet.packet_id))
        elif kind == p.PINGREQ and self.pingresp:
            await peer.send(p.PINGRESP_PACKET)
        return True

    async def _ack(self, peer, packet):
        if packet.TYPE not in self.withhold:
            await peer.send(packet)

    async def deliver(self, topic, payload, qos=0, retain=False):
        packet_id = None
        if qos:
            packet_id = self._next_id
            self._next_id = self._next_id % 65535 + 1
        await self.peer.send(p.Publish(topic, payload, qos, retain, False, packet_id))


def of_type(packets, kind):
    return [packet for packet in packets if packet.TYPE == kind]
