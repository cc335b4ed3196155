# The bench's pieces (bench/): the protocol minimum against packet sizes counted by
# hand and against our encoder, the heap-floor search, the report, and short real runs:
# two cycles of our client under MicroPython to a mosquitto of its own, one from a ROMFS
# image, and the manual's minimal upload window against a fast emulator. (make bench runs it all.)
import os

from bench import minimum, modem_min
from bench.helper import DOWNLINK_BYTES, Helper
from bench.mp import codec
from bench.mp.harness import Workload
from bench.peers import build
from bench.report import OURS, Results
from bench.runner import Runner, RunFailed
from bench.stages import Bench, Plan
from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt.server_codec import encoded_size
from tools import romfs
from tools.services import EmulatorProcess, Mosquitto

import pytest


def test_remaining_length_takes_one_to_four_bytes():
    sizes = [(0, 1), (127, 1), (128, 2), (16383, 2), (16384, 3), (2097151, 3), (2097152, 4),
             (268435455, 4)]
    assert [minimum.length_bytes(n) for n, _ in sizes] == [size for _, size in sizes]
    with pytest.raises(ValueError):
        minimum.length_bytes(268435456)


def test_packet_sizes_counted_by_hand():
    # CONNECT: 2 fixed + 10 variable header ("MQTT" field 6, level, flags, keepalive 2) + 2 + 10
    assert minimum.connect("bench-0001") == 24
    # PUBLISH QoS 1: remaining 2 + 13 + 2 + 200 = 217, two length bytes
    assert minimum.publish("bench/0001/up", 200, 1) == 220
    assert minimum.publish("bench/0001/up", 200, 0) == 218
    assert minimum.publish("t", 124, 0) == 129  # remaining 127: still one length byte
    assert minimum.publish("t", 125, 0) == 131  # remaining 128: two
    assert minimum.subscribe(["bench/0001/down"]) == 22  # 2 + 2 id + 2 + 15 + 1 qos
    assert (minimum.connack(), minimum.suback(1), minimum.ack(), minimum.disconnect()) == (4, 5, 4, 2)


def test_cycle_minimum_counted_by_hand():
    # QoS 1: 24 + 22 + 10 x 220 + 2 PUBACK x 4 + 2 sent; 4 + 5 + 10 x 4 + 2 x 85 received
    assert minimum.cycle(Workload("0001", 1), 64) == {"sent": 2256, "received": 219}
    # QoS 0: 24 + 22 + 10 x 218 + 2 sent; 4 + 5 + 2 x 83 received
    assert minimum.cycle(Workload("0001", 0), 64) == {"sent": 2228, "received": 175}


def test_minimum_agrees_with_our_encoder():
    work = Workload("0001", 1)
    assert minimum.connect(work.client_id) == encoded_size(p.Connect(work.client_id, True, 60))
    assert minimum.subscribe([work.down]) == encoded_size(p.Subscribe(1, [(work.down, 1)]))
    for qos in (0, 1):
        packet = p.Publish(work.up, work.payloads[0], qos, False, False, 7 if qos else None)
        assert minimum.publish(work.up, 200, qos) == encoded_size(packet)
    session, closing = modem_min.mqtt_session(work)
    assert len(session) == minimum.connect(work.client_id) + minimum.subscribe([work.down]) + 2200
    assert len(closing([p.Publish(work.down, b"x", 1, False, False, 3)])) == 4 + 2


class _Floor(Runner):
    def __init__(self, needed_k):
        Runner.__init__(self, "build", "127.0.0.1:1")
        self.needed_k = needed_k
        self.tried = []

    def passes(self, module, heap_k, **options):
        self.tried.append(heap_k)
        return heap_k >= self.needed_k


def test_heap_floor_search_finds_the_smallest_passing_size():
    for needed in (101, 117, 180, 411):
        floor = _Floor(needed)
        found, probes = floor.smallest_heap("run_ours", 100 * 1024)
        assert found == needed and probes == len(floor.tried) <= 12, (needed, floor.tried)
        assert min(floor.tried) > 100  # the live heap is never tried: it cannot pass


class _Boards(Bench):
    """A simulated board that runs in these heaps (KiB) only."""

    def __init__(self, runs):
        Bench.__init__(self, None, Plan(), None, log=lambda line: None)
        self.runs = runs
        self.tried = []

    def _board_runs(self, kib, options, work):
        self.tried.append(kib)
        return kib in self.runs


def test_the_boards_smallest_heap_is_the_first_that_runs_whatever_fails_above_it():
    # 200 fails (a boot that found no block for a module) between sizes that run
    boards = _Boards({192, 208, 216, 512})
    assert boards._smallest_board_heap([], "work") == (192, 13)
    assert boards.tried == list(range(96, 193, 8))
    assert _Boards(set())._smallest_board_heap([], "work") == (None, 53)


def test_report_marks_targets_and_lays_clients_side_by_side():
    results = Results()
    results.reference("bytes", "protocol minimum", "protocol-minimum", 100, "B")
    results.add("bytes", OURS, 101, "B", "<= 1.02 x minimum", True)
    results.add("time", OURS, 12.5, "ms", "< 10 ms", False)
    table = results.markdown()
    assert "| bytes | 101 B |" in table and "protocol minimum: 100 B" in table
    assert "PASS" in table and "**MISS**" in table
    assert [f.client for f in results.missed()] == [OURS]
    assert '"passed": false' in results.json() and '"target"' in results.json()
    with pytest.raises(ValueError):  # one cell per figure and client: a second would be hidden
        results.add("time", OURS, 9.5, "ms")


def test_codec_rates_are_measured():
    assert codec.encode_rate(0.02) > 0 and codec.decode_rate(0.02) > 0


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    broker = Mosquitto().start()
    helper = Helper(broker.address).start()
    try:
        yield broker, helper, build({}, str(tmp_path_factory.mktemp("bench-build")))
    finally:
        helper.stop()
        broker.stop()


def test_two_cycles_of_our_client_cost_the_protocol_minimum(lab):
    broker, helper, build_dir = lab
    runner = Runner(build_dir, broker.address)
    answered = helper.answered
    figures = runner.run("run_ours", mode="peak", cycles=2, warmup=1, qos=1)
    least = minimum.cycle(Workload("0000", 1), DOWNLINK_BYTES)
    assert figures["cycles"] == 2
    assert figures["sent"] == least["sent"] and figures["received"] == least["received"]
    assert 0 < figures["peak"] < figures["live"]
    assert helper.answered == answered + 3 and helper.error is None
    with pytest.raises(RunFailed):
        runner.run("run_ours", heap="16K", cycles=1, warmup=0)  # the heap is too small


# A client whose task keeps its connection's objects (here 4 KB) for a second after the
# cycle, as mqtt_async's reconnect keeper does: the next cycle's start must not count them.
_LINGERING = """import asyncio
import harness as h
from aharness import drop_finished_tasks, run_cycles

OPTIONS = h.options()
meter = h.Meter(OPTIONS["mode"] == "peak")


async def hold(buffer):
    await asyncio.sleep_ms(1000)


async def cycle():
    await asyncio.sleep_ms(1100)  # the last cycle's task ends in here
    await drop_finished_tasks()  # and lets go of its objects (as a client's I/O tasks would make it)
    objects = bytearray(4096)
    meter.sample()
    asyncio.create_task(hold(objects))


asyncio.run(run_cycles(OPTIONS, cycle, meter))
"""


def test_a_peak_counts_from_a_start_without_the_last_cycles_lingering_objects(lab):
    broker, _, build_dir = lab
    with open(os.path.join(build_dir, "mp", "run_lingering.py"), "w") as out:
        out.write(_LINGERING)
    figures = Runner(build_dir, broker.address).run("run_lingering", mode="peak", cycles=2, warmup=1)
    assert 4096 <= figures["peak"] < 4096 + 1024, figures


def test_a_client_runs_from_a_romfs_image_of_the_tree_with_its_code_out_of_the_heap(lab, tmp_path):
    broker, helper, build_dir = lab
    runner = Runner(build_dir, broker.address)
    image = str(tmp_path / "bench.img")
    size = romfs.pack_folder(build_dir, image)
    options = dict(cycles=1, warmup=0, qos=1)
    from_files = runner.run("run_ours", mode="peak", **options)
    from_image = runner.run("from_romfs", mode="peak", env={"BENCH_IMAGE": image, "BENCH_RUNNER": "run_ours"},
                            **options)
    assert from_image["cycles"] == 1 and from_image["sent"] == from_files["sent"]
    # the image is in the heap on a PC, but the client's bytecode is not copied out of it
    assert size + 20000 < from_image["live"] < size + from_files["live"] - 10000, (size, from_files, from_image)


def test_minimal_upload_window_takes_eight_commands(lab):
    broker, _, _ = lab
    emulator = EmulatorProcess("--time-scale", "0.1").start()
    try:
        received = modem_min.run_window(emulator, broker.address, Workload("00ff", 1), time_scale=0.1)
        state = emulator.state()
    finally:
        emulator.stop()
    kinds = [packet.TYPE for packet in received]
    assert kinds.count(p.PUBACK) == 10 and kinds.count(p.PUBLISH) == 2 and kinds[0] == p.CONNACK
    assert state["commands"] == 8 and not state["powered"] and state["links"] == []
    assert state["powered_ms"] >= 12000 + 1000 + 5000  # boot, NETOPEN, shutdown of the model
