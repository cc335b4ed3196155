import asyncio

from cellmqtt import config, memwatch, port
from cellmqtt.errors import ConfigError
from support import MICROPYTHON, raises, run


def _clean_cycle():
    # the shape of a duty cycle's garbage: buffers, a dict, a formatted string
    scratch = {"seq": 1, "payload": bytearray(200)}
    scratch["text"] = "%d:%d" % (scratch["seq"], len(scratch["payload"]))
    return len(scratch)


def test_injected_leak_of_20_bytes_per_cycle_is_flagged_within_50_cycles():
    watch = memwatch.MemWatch()
    hoard = []
    flagged_at = None
    for cycle in range(1, 51):
        _clean_cycle()
        hoard.append(bytes(20))
        if watch.sample().status == memwatch.LEAK:
            flagged_at = cycle
            break
    assert flagged_at is not None, "leak not flagged in 50 cycles: %r" % watch.verdict
    assert watch.verdict.growth >= watch.leak_bytes


def test_clean_loop_of_1000_cycles_flags_nothing():
    watch = memwatch.MemWatch()
    statuses = set()
    for _ in range(1000):
        _clean_cycle()
        statuses.add(watch.sample().status)
    assert memwatch.LEAK not in statuses and memwatch.LOW_MEMORY not in statuses, watch.verdict
    assert memwatch.OK in statuses


def test_peak_covers_what_was_allocated_between_samples():
    watch = memwatch.MemWatch()
    watch.sample()
    big = bytearray(8000)
    watch.observe_peak()
    del big
    verdict = watch.sample()
    assert verdict.peak >= verdict.used + 8000


def test_low_memory_asks_for_a_reset():
    watch = memwatch.MemWatch({"min_free": 1 << 40, "warmup": 0})
    verdict = watch.sample()
    assert verdict.status == memwatch.LOW_MEMORY and verdict.should_reset


def test_health_figures():
    watch = memwatch.MemWatch({"warmup": 0, "window": 4})
    for _ in range(4):
        watch.sample()
    figures = watch.verdict.as_dict()
    assert figures["samples"] == 4 and figures["status"] in (memwatch.OK, memwatch.LEAK)
    assert figures["used"] > 0 and figures["peak"] >= figures["used"]


def test_bad_configuration_names_the_key():
    # checked at boot with the rest of config.json: the watchdog takes it as checked
    assert raises(ConfigError, config.check_memwatch, {"window": 5}).key == "memwatch.window"
    assert raises(ConfigError, config.check_memwatch, {"leak_bytes": "x"}).key == "memwatch.leak_bytes"
    assert raises(ConfigError, config.check_memwatch, {"windw": 8}).key == "memwatch.windw"
    assert raises(ConfigError, config.check_memwatch, {"leak_bytes": 0}).key == "memwatch.leak_bytes"
    assert config.check_memwatch({"window": 8}) == dict(memwatch.DEFAULTS, window=8)


class _Heap:
    """A port with scripted figures: `used` after each collection, and the free total
    and largest free block it reports."""

    def __init__(self, used=1000, free=100000, largest=100000):
        self.used = used
        self.free = free
        self.largest = largest

    def collect(self):
        pass

    def mem_alloc(self):
        return self.used

    def mem_free(self):
        return self.free

    def largest_free(self):
        return self.largest


def _scripted(heap, config, used_series):
    real = memwatch.port
    memwatch.port = heap
    try:
        watch = memwatch.MemWatch(config)
        statuses = []
        for used in used_series:
            heap.used = used
            statuses.append(watch.sample().status)
        return watch, statuses
    finally:
        memwatch.port = real


def test_the_largest_free_block_is_sampled_after_gc():
    verdict = memwatch.MemWatch().sample()
    assert 0 < verdict.largest <= verdict.free + 1024  # CPython: its traced figure moves a little
    assert verdict.as_dict()["largest_free"] == verdict.largest


def test_a_fragmented_heap_is_low_memory_though_plenty_is_free():
    config = {"warmup": 0, "min_free": 8192, "min_block": 4096}
    watch, statuses = _scripted(_Heap(free=100000, largest=4000), config, [1000])
    assert statuses == [memwatch.LOW_MEMORY] and watch.verdict.should_reset
    watch, statuses = _scripted(_Heap(free=100000, largest=5000), config, [1000])
    assert statuses == [memwatch.WARMUP] and not watch.verdict.should_reset


def test_a_largest_block_that_holds_a_windows_allocations_is_not_low_memory():
    """A small heap (192K) keeps a few KB in its largest block after gc: that is not
    low memory when a window allocates less (a reset would not make it larger)."""
    watch, statuses = _scripted(_Heap(free=50000, largest=3000), {"warmup": 0}, [1000])
    assert statuses == [memwatch.WARMUP] and not watch.verdict.should_reset
    watch, statuses = _scripted(_Heap(free=6000, largest=6000), {"warmup": 0}, [1000])
    assert statuses == [memwatch.LOW_MEMORY]


def test_fragmentation_of_the_real_heap_is_low_memory_under_micropython():
    if not MICROPYTHON:  # CPython's notional heap does not fragment
        return
    held = []
    try:
        while True:
            held.append(bytearray(1024))
    except MemoryError:
        pass
    for i in range(0, len(held), 2):  # half of it free again, in 1 KB holes
        held[i] = None
    verdict = memwatch.MemWatch({"warmup": 0, "min_block": 16384}).sample()
    held = None
    assert verdict.status == memwatch.LOW_MEMORY, verdict
    assert verdict.free >= 16384 > verdict.largest, verdict


def _fits(size):
    try:
        bytearray(size)
    except MemoryError:
        return False
    return True


def test_the_largest_free_block_is_exact_to_16_bytes_under_micropython():
    # the largest block is the heap's first hole, where what the search's trials leave
    # (small objects, MemoryErrors) lands when the collector is off
    if not MICROPYTHON:  # CPython's figure is notional
        return
    import gc
    import uctypes

    run = bytearray(20 * 1024)  # one allocation: contiguous whatever holes the heap had
    chunks: list = []
    fillers: list = []
    for size, into in ((1024, chunks), (16, fillers)):  # the heap full, its holes too
        try:
            while True:
                into.append(bytearray(size))
        except MemoryError:
            pass
    start = uctypes.addressof(run)
    run = None  # a hole of 20 KB, the first, 1 KB holes after it
    for i in range(0, len(chunks), 3):
        if uctypes.addressof(chunks[i]) > start:
            chunks[i] = None
    gc.collect()
    largest = port.largest_free()
    gc.disable()
    taken = not _fits(largest)  # the search leaves the block taken by garbage, as bytearrays did
    gc.enable()
    fits = _fits(largest) and not _fits(largest + 16)  # once collected
    chunks = fillers = []
    assert taken, largest
    assert fits, largest
    assert largest > 19 * 1024, largest  # the run (to a grain), not a 1 KB hole
    assert gc.isenabled()


def test_a_step_flat_after_it_is_forgiven_once_a_slope_is_not():
    config = {"warmup": 0, "window": 8, "leak_bytes": 256, "drift_bytes": 4096}
    step = [1000] * 12 + [12000] * 30  # one allocation of 11 KB, late, kept for good
    watch, statuses = _scripted(_Heap(), config, step)
    assert memwatch.LEAK not in statuses and statuses[-1] == memwatch.OK, statuses
    assert watch.verdict.step == 11000 and watch.verdict.drift == 11000
    # a second step is a pattern: a leak
    watch, statuses = _scripted(_Heap(), config, step + [12400] * 12)
    assert memwatch.LEAK in statuses[len(step):], statuses
    # a slope of 100 bytes a sample: flagged within the first full window
    watch, statuses = _scripted(_Heap(), config, [1000 + 100 * i for i in range(12)])
    assert statuses[7] == memwatch.LEAK and watch.verdict.step == 0, statuses


def test_a_task_that_finished_under_the_sampling_one_is_let_go():
    # MicroPython's task queue keeps the last task queued under the running one, and
    # with it all its coroutine referenced, until another takes its place
    async def worker():
        held = bytearray(20000)
        await asyncio.sleep(0)  # queued under main
        return len(held)

    async def main():
        port.collect()
        before = port.mem_alloc()
        task = asyncio.create_task(worker())
        await asyncio.sleep(0)  # main queued after it: the worker is queued under main next
        assert await task == 20000
        task = None
        await memwatch.drop_finished_tasks()
        port.collect()
        return port.mem_alloc() - before

    assert run(main()) < 20000

