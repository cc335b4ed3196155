# Counters that live as long as the board, driven past 2**30: each stays a small int on a
# 32-bit port (-2**30 .. 2**30 - 1), so an update never allocates a long int. The
# allocation check is exact under MicroPython (gc.mem_alloc() before and after, no
# collection between); the unix port is 64-bit, so the range check is what speaks for a
# board there.
import gc
import json
import os

from cellmqtt import app, config, downlink, memwatch, port, power
from cellmqtt.errors import LimitExceeded, LinkClosed
from cellmqtt.ledger import Ledger
from cellmqtt.synthetic import SyntheticSensor
from cellmqtt.store import Store
from support import MICROPYTHON, example_config, raises, remove_tree, run, temp_folder

CONFIG = example_config()
SMALL = (1 << 30) - 1  # the largest small int on a 32-bit port


def _small(*values):
    return all(-SMALL - 1 <= value <= SMALL for value in values)


def _allocated(fn):
    """Bytes fn() allocated; 0 outside MicroPython (there it is not exact)."""
    if not MICROPYTHON:
        fn()
        return 0
    gc.collect()
    before = gc.mem_alloc()
    fn()
    return gc.mem_alloc() - before


def _manager():
    # no STATUS, no ready check: a press is trusted; pins held in memory by the PC port
    pins = {"pwrkey": 4, "flight": None, "status": None, "dtr": None}
    return power.PowerManager(config.power_lines(pins), press_on_ms=1, press_off_ms=1)


def test_modem_on_time_passes_2_30_ms_stored_split_and_the_health_message_keeps_it():
    manager = _manager()
    manager.total_on_s = SMALL // 1000 - 2  # 2**30 ms less about 2.8 s
    manager._on_since = port.ticks_ms()
    manager.state = power.ON
    total = manager.total_on_ms
    for _ in range(3):  # windows of at least 1.5 s each
        manager._on_since = port.ticks_diff(port.ticks_ms(), 1500)
        manager.state = power.ON
        assert _allocated(manager._cut) == 0
        assert manager.cycle_on_ms >= 1500 and _small(manager.total_on_s, manager._total_ms, manager.cycle_on_ms)
        total += manager.cycle_on_ms
        assert manager.total_on_ms == total and 0 <= manager._total_ms < 1000
    assert manager.total_on_ms > SMALL
    folder = temp_folder("counters")
    try:
        cycle = app.DutyCycle(CONFIG, sensor=SyntheticSensor(), store=Store(folder), power=manager,
                              book=Ledger(), log=lambda line: None, transport=lambda *args: None)
        health = json.loads(cycle._health(app.Outcome(1)))
        assert health["modem_total_on_ms"] == total  # the key the fleet tool reads
    finally:
        remove_tree(folder)


def test_power_cycles_wrap_at_2_30():
    manager = _manager()
    manager.power_cycles = SMALL
    run(manager.power_on())
    assert manager.power_cycles == 0 and manager.state == power.ON
    run(manager.power_off())
    assert manager.state == power.OFF and _small(manager.total_on_s)


class _NoWay:
    """A transport that fails at once: the window fails, the counters move."""

    async def connect(self):
        raise LinkClosed("no way to the broker")

    async def release(self):
        pass


def test_duty_cycle_counters_wrap_or_stop_at_2_30():
    folder = temp_folder("counters")
    here = os.getcwd()
    os.chdir(folder)  # sample() keeps the boot counter in the working folder, as on a board
    try:
        cycle = app.DutyCycle(CONFIG, sensor=SyntheticSensor(), store=Store(folder), power=_manager(),
                              book=Ledger(), log=lambda line: None, transport=lambda *args: _NoWay())
        cycle.collected = cycle.windows = cycle.failures = SMALL
        cycle.sample()
        assert cycle.collected == 0
        outcome = run(cycle.window())
        assert not outcome.ok and outcome.number == cycle.windows == 0
        assert cycle.failures == SMALL  # consecutive failures: the back-off stays at its longest
        run(cycle.window())
        assert cycle.windows == 1 and cycle.failures == SMALL and cycle._skip >= 0
        assert "queue" not in os.listdir(folder)  # the store given, not a default one beside it
    finally:
        os.chdir(here)
        remove_tree(folder)


def test_downlink_counters_wrap_at_2_30_without_allocating():
    inbox = downlink.Inbox(0, "cmd")  # every command deferred: nothing is held
    inbox.deferred = inbox.oversized = SMALL - 1
    assert _allocated(lambda: inbox.defer(3)) == 0 and inbox.deferred == 1
    oversized = lambda: inbox.put_oversized("cmd", 300, 1)  # noqa: E731  # made before it is measured
    assert _allocated(oversized) == 0 and _allocated(oversized) == 0
    assert inbox.oversized == 0 and inbox.deferred == 3


def test_memory_watchdog_sample_count_stops_at_2_30():
    watch = memwatch.MemWatch()
    watch.verdict.samples = SMALL - 1
    for _ in range(3):
        watch.sample()
    assert watch.verdict.samples == SMALL and _small(watch.verdict.used, watch.verdict.peak)


def test_store_seq_at_the_u32_bound_refuses_and_keeps_everything():
    # physics bounds it: 2**32 readings take 136 years at one a second, 8,000 at one a
    # minute. At the bound the store refuses a reading (typed); it never writes a seq
    # that a u32 cannot hold (MicroPython's struct would truncate it to 0 silently)
    folder = temp_folder("counters")
    try:
        store = Store(folder)
        store.next_seq = 0xFFFFFFFE  # as after 2**32 - 3 readings
        assert store.append({"n": 1}) == 0xFFFFFFFE and store.append({"n": 2}) == 0xFFFFFFFF
        error = raises(LimitExceeded, store.append, {"n": 3})
        assert error.limit == 0xFFFFFFFF and "u32" in str(error)
        store = Store(folder)  # what flash holds says the same
        assert store.next_seq == 1 << 32 and [seq for seq, _ in store.peek(5)] == [0xFFFFFFFE, 0xFFFFFFFF]
        assert store.ack(0xFFFFFFFF) == 2 and store.depth == 0
        raises(LimitExceeded, store.append, {"n": 3})
        assert Store(folder).depth == 0
    finally:
        remove_tree(folder)
