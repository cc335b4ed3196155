# Helpers for the conformance tests against real brokers: a Lab that accounts for every
# client and stream a test makes, a Stream wrapper that misbehaves on purpose (a link
# that dies before an ack, or goes silent), an inbox for callbacks, a TCP server that
# never answers, and the broker-side files (password files, ACLs).
import asyncio
import json
import os
import shutil
import subprocess
import tempfile

from cellmqtt import port
from cellmqtt.ledger import Ledger
from cellmqtt.mqtt import MqttClient
from cellmqtt.mqtt.packets import Decoder

WAIT_S = 5  # no exchange with a loopback broker takes this long unless something is broken
DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"


class Framer:
    """Splits an outgoing byte stream into MQTT packets: the first bytes (type and
    flags) of those that begin in each write (a large PUBLISH comes in pieces)."""

    def __init__(self):
        self._skip = 0
        self._head = bytearray()

    def starts(self, data):
        found = []
        index = 0
        while index < len(data):
            if self._skip:
                step = min(self._skip, len(data) - index)
                self._skip -= step
                index += step
                continue
            head = self._head
            head.append(data[index])
            index += 1
            if len(head) >= 2 and not head[-1] & 0x80:
                length = 0
                for shift, byte in enumerate(head[1:]):
                    length |= (byte & 0x7F) << (7 * shift)
                found.append(head[0])
                self._skip = length
                self._head = bytearray()
        return found


class Tap:
    """A Stream over a real socket, counted open in its Lab until the client closes it.
    swallow: packet types written to nowhere (silent=True: every packet); cut_before:
    the link dies instead of sending one of these; cut_after: it dies once one is sent."""

    def __init__(self, lab, stream):
        self.lab = lab
        self._stream = stream
        self.closed = False
        self.cut = False
        self.silent = False
        self.swallow = ()
        self.cut_before = ()
        self.cut_after = ()
        self.sent = []  # packet types that went out
        self.heads = []  # their first bytes: type and flags (DUP is 0x08 of a PUBLISH)
        self.swallowed = []
        self._framer = Framer()
        lab.open_streams += 1

    async def read(self, max_bytes):
        data = b"" if self.cut else await self._stream.read(max_bytes)
        return b"" if self.cut else data  # what came after the cut died with the link

    async def write(self, data):
        if self.cut:
            raise OSError(32, "link cut")
        heads = self._framer.starts(data)
        types = [head >> 4 for head in heads]
        if self.silent or any(kind in self.swallow for kind in types):
            self.swallowed.extend(types)
            return
        if any(kind in self.cut_before for kind in types):
            await self._cut()
            raise OSError(104, "link cut before packet types %s" % types)
        dying = any(kind in self.cut_after for kind in types)
        self.cut = self.cut or dying  # nothing the peer answers from now on arrives
        await self._stream.write(data)
        self.sent.extend(types)
        self.heads.extend(heads)
        if dying:
            await self._cut()

    async def _cut(self):
        self.cut = True
        await self._stream.close()

    async def close(self):
        if not self.closed:
            self.closed = True
            self.lab.open_streams -= 1
        await self._stream.close()


class Lab:
    """What one test made against one broker: every client has a Ledger of its own
    and every stream is a Tap; leftovers() says what of it is not gone again."""

    def __init__(self, address, prefix, **defaults):
        self.address = address
        self.prefix = prefix  # topics of this test start with it: tests share a broker
        self.defaults = defaults  # client options the broker needs (amqtt: a user name)
        self.open_streams = 0
        self.books = []
        self.clients = []

    def topic(self, name):
        return "%s/%s" % (self.prefix, name)

    def id(self, name):
        return "%s-%s" % (self.prefix.replace("/", "-"), name)

    def client(self, client_id, **options):
        book = Ledger()
        book.mark_baseline()
        self.books.append(book)
        merged = dict(self.defaults)
        merged.update(options)
        merged.setdefault("connect_timeout_ms", WAIT_S * 1000)
        merged.setdefault("ack_timeout_ms", WAIT_S * 1000)
        client = MqttClient(client_id, ledger=book, **merged)
        self.clients.append(client)
        return client

    async def stream(self, address=None):
        return Tap(self, await port.open_tcp(address or self.address))

    async def connect(self, client, address=None):
        """Connect over a new Tap; (session present, tap)."""
        tap = await self.stream(address)
        present = await client.connect(tap)
        return present, tap

    async def connected(self, client_id, **options):
        client = self.client(client_id, **options)
        await self.connect(client)
        return client

    async def abandon(self):
        """After a failed scenario: disconnect every client, so only the failure shows."""
        for client in self.clients:
            await client.disconnect()

    def leftovers(self):
        """What is still held: [] when every stream is closed and every ledger is back."""
        held = ["%d stream(s) open" % self.open_streams] if self.open_streams else []
        for book in self.books:
            held.extend(repr(entry) for entry in book.extra())
        return held


class Inbox:
    """A subscription callback that keeps what it gets: (topic, payload, qos, retain)."""

    def __init__(self):
        self.messages = []
        self._event = asyncio.Event()

    def __call__(self, topic, payload, qos, retain):
        self.messages.append((topic, payload, qos, retain))
        self._event.set()

    def payloads(self):
        return [message[1] for message in self.messages]

    async def wait_for(self, payload, timeout_s=WAIT_S):
        """Until a message with this payload came; its tuple."""
        await until(lambda: payload in self.payloads(), "message %r" % payload, timeout_s, self._event)
        return self.messages[self.payloads().index(payload)]


def play(lab, scenario, *args, **options):
    """Run one scenario in an event loop of its own; then nothing may be held."""

    async def main():
        try:
            await scenario(lab, *args, **options)
        except BaseException:
            await lab.abandon()
            raise

    asyncio.run(main())
    assert lab.leftovers() == []


async def until(ready, what, timeout_s=WAIT_S, event=None):
    """Wait until ready() holds (woken by event, or polled); AssertionError past timeout_s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not ready():
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError("no %s within %g s" % (what, timeout_s))
        if event is None:
            await asyncio.sleep(min(0.01, left))
            continue
        event.clear()
        try:
            await asyncio.wait_for(event.wait(), left)
        except asyncio.TimeoutError:
            pass


async def marker(lab, publisher, inbox, name="marker"):
    """Publish a marker QoS 1 and wait for it: whatever the broker was going to send the
    inbox's client before it has come by then (MQTT keeps the order, 4.6)."""
    payload = ("%s-%d" % (name, len(inbox.messages))).encode()
    await publisher.publish(lab.topic(name), payload, qos=1)
    await inbox.wait_for(payload)


class SilentServer:
    """Accepts TCP connections and never sends a byte; notes each one that the
    client closed."""

    def __init__(self):
        self.server = None
        self.address = None
        self.accepted = 0
        self.closed_by_client = 0
        self._event = asyncio.Event()
        self._writers = []

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.address = "127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer):
        self.accepted += 1
        self._writers.append(writer)
        while await reader.read(4096):
            pass
        self.closed_by_client += 1
        self._event.set()

    async def wait_closed_by_client(self, count=1):
        await until(lambda: self.closed_by_client >= count, "close by the client", WAIT_S, self._event)

    async def stop(self):
        for writer in self._writers:
            writer.close()
        self.server.close()
        await self.server.wait_closed()


async def raw_connack(address, connect_bytes):
    """Send hand-made CONNECT bytes (what our own encoder refuses to build) and decode
    the broker's answer with our decoder; the packet, or None if it just closed."""
    host, _, number = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(number))
    try:
        writer.write(connect_bytes)
        await writer.drain()
        decoder = Decoder()
        while True:
            data = await asyncio.wait_for(reader.read(64), WAIT_S)
            if not data:
                return None
            decoder.feed(data)
            packet = decoder.next_packet()
            if packet is not None:
                return packet
    finally:
        writer.close()


def connect_bytes(client_id, clean_session, keepalive_s=60):
    """A CONNECT with no will and no login, by hand."""
    ident = client_id.encode()
    body = (b"\x00\x04MQTT\x04" + bytes([0x02 if clean_session else 0]) + keepalive_s.to_bytes(2, "big")
            + len(ident).to_bytes(2, "big") + ident)
    return bytes([0x10, len(body)]) + body


class BrokerFiles:
    """A folder for a broker's password and ACL files that the broker can read: a
    mosquitto started as root reads them as user mosquitto."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="broker-files-")
        os.chmod(self.folder, 0o755)

    def path(self, name):
        return os.path.join(self.folder, name)

    def remove(self):
        shutil.rmtree(self.folder, ignore_errors=True)


def mosquitto_password_file(files, user, password):
    path = files.path("passwords")
    subprocess.run(["mosquitto_passwd", "-c", "-b", path, user, password], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=WAIT_S)
    os.chmod(path, 0o644)
    return path


def mosquitto_dynsec_file(files, denied_pattern):
    """mosquitto's dynamic security plugin: anonymous clients may do anything but
    subscribe to denied_pattern (its default ACL file checks no subscription)."""
    path = files.path("dynsec.json")
    config = {
        "defaultACLAccess": {"publishClientSend": True, "publishClientReceive": True, "subscribe": True,
                             "unsubscribe": True},
        "clients": [],
        "groups": [{"groupname": "anonymous", "roles": [{"rolename": "limited"}]}],
        "roles": [{"rolename": "limited", "acls": [
            {"acltype": "subscribePattern", "topic": denied_pattern, "priority": 0, "allow": False}]}],
        "anonymousGroup": "anonymous",
    }
    with open(path, "w") as out:
        json.dump(config, out)
    os.chmod(path, 0o644)
    return path
