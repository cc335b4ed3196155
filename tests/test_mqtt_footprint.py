# Heap figures of one duty-cycle session: connect, 10 QoS 1 publishes of 200 bytes,
# disconnect, over the in-memory broker. The live heap is sampled after a collection
# at every stream operation (both ends), so the peak is what the session holds at
# once, not garbage waiting for gc. The broker shares the heap: a lean one is used.
import asyncio
import gc

from cellmqtt import port
from cellmqtt.ledger import Ledger
from cellmqtt.mqtt import MqttClient
from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt import server_codec as sc
from mqtt_fakes import Peer, Streams
from support import MICROPYTHON, run

PAYLOAD = bytes(200)


class _SampledStreams(Streams):
    def __init__(self):
        super().__init__()
        self.peak = 0

    async def gate(self, what):
        if MICROPYTHON:
            gc.collect()  # exact there; CPython's collections are too slow to do this often
        used = port.mem_alloc()
        if used > self.peak:
            self.peak = used


async def _lean_broker(stream):
    peer = Peer(stream, max_packet=256)
    while True:
        packet = await peer.receive()
        if packet is None or packet.TYPE == p.DISCONNECT:
            break
        if packet.TYPE == p.CONNECT:
            await peer.send(sc.Connack(False, 0))
        elif packet.TYPE == p.PUBLISH:
            await peer.send(p.Bare(p.PUBACK, packet.packet_id))
    await peer.close()


async def _session(streams):
    client = MqttClient("dev-footprint", keepalive_s=60, ledger=Ledger())
    stream, broker_end = streams.pair()
    broker = asyncio.create_task(_lean_broker(broker_end))
    await client.connect(stream)
    for _ in range(10):
        await client.publish("t/readings", PAYLOAD, qos=1)
    await client.disconnect()
    await broker


def measure():
    """(peak live heap above the start, bytes still held after) in bytes."""
    streams = _SampledStreams()
    gc.collect()
    start = port.mem_alloc()
    streams.peak = start
    run(_session(streams))
    gc.collect()
    return streams.peak - start, port.mem_alloc() - start


def test_session_heap_peak_is_small_and_nothing_stays():
    measure()  # first use of every code path settles caches
    peak, kept = measure()
    if MICROPYTHON:
        # client (2 KiB receive buffer, 512 B send buffer), broker, asyncio tasks
        assert peak < 16 * 1024, peak
        assert kept == 0, kept
    else:
        assert peak < 256 * 1024 and kept < 4096, (peak, kept)  # garbage included
