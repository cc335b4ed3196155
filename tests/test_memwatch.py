from cellmqtt import memwatch
from cellmqtt.errors import ConfigError
from support import raises


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
    assert raises(ConfigError, memwatch.MemWatch, {"window": 5}).key == "memwatch.window"
    assert raises(ConfigError, memwatch.MemWatch, {"leak_bytes": "x"}).key == "memwatch.leak_bytes"
    assert raises(ConfigError, memwatch.MemWatch, {"windw": 8}).key == "memwatch.windw"
    assert raises(ConfigError, memwatch.MemWatch, {"leak_bytes": 0}).key == "memwatch.leak_bytes"
