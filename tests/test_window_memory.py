# A MemoryError inside an upload window (its own process in the MicroPython lane: the
# heap is filled for real there): a failed window like any other, its line shows the
# largest free block, the queue is intact, and the next window runs after a collection.
import os

from cellmqtt import app, port
from cellmqtt.ledger import Ledger
from cellmqtt.synthetic import SyntheticSensor
from support import MICROPYTHON, example_config, remove_tree, run, temp_folder


CONFIG = example_config()


class _Power:
    state = "off"
    cycle_on_ms = 0

    def status_high(self):
        return False


class Starved(app.DutyCycle):
    """A window that runs out of memory half-way when `starving`, else does nothing."""

    starving = False

    async def _window(self, outcome):
        if not self.starving:
            return
        held = [bytearray(1 << 20 if not MICROPYTHON else 512)]  # what it built before
        while MICROPYTHON:  # the heap filled for real, as a board's does
            held.append(bytearray(512))
        raise MemoryError("memory allocation failed, allocating 512 bytes")


def test_a_memory_error_mid_window_fails_it_and_the_next_window_retries_after_a_collection():
    async def body():
        cycle = Starved(CONFIG, sensor=SyntheticSensor(), power=_Power(), book=Ledger(),
                        log=lambda line: None)
        assert (await cycle.window()).ok  # first use of what a window loads
        for _ in range(3):
            cycle.sample()
        port.collect()
        used, largest = port.mem_alloc(), port.largest_free()
        cycle.starving = True
        failed = await cycle.window()
        verdict = cycle.watch.verdict
        line = failed.line(cycle)
        assert not failed.ok and failed.error.startswith("MemoryError: "), failed.error
        assert " fail " in line and " largest=%d " % verdict.largest in line, line
        # what the window held is collected: the heap as it was, in one piece as big
        assert verdict.used < used + 4096 and verdict.largest > largest - 4096, (verdict, used, largest)
        assert cycle.store.depth == 3 and cycle.failures == 1 and cycle._skip > 0
        cycle.starving = False
        cycle._skip = 0
        retried = await cycle.window()
        assert retried.ok and cycle.failures == 0 and cycle.store.depth == 3

    here = os.getcwd()
    folder = temp_folder("window-memory")
    os.chdir(folder)  # the queue and settings live in the working directory, as on a board
    try:
        run(body())
    finally:
        os.chdir(here)
        remove_tree(folder)
