"""The memory watchdog: one sample per duty cycle, taken after gc.collect().

It mirrors msh `free` (total, used, peak, largest free block) and judges leaks by
the floor of used memory. Used memory after a collection wanders with what the
cycle happened to keep, but its minimum over several cycles (the floor) only rises
when something is retained for good. Two checks:
  - window: the floor of the newest half of the last `window` samples exceeds the
    floor of the oldest half by `leak_bytes` or more, and still rises within the
    newest half (a fast leak, caught within `warmup + window` samples). A rise that
    stayed flat for the newest half is a step: the first is forgiven (something
    allocated once, late); a second one is a leak while the window sees it;
  - drift: the floor of the last window exceeds the floor of the first full window,
    less the forgiven step, by `drift_bytes` or more (a slow leak, caught in the long
    run).
Free memory under `min_free`, or a largest free block (fragmentation) under
`min_block`, is low memory.
"""

from array import array

from . import port
from ._const import const

OK = "ok"
WARMUP = "warmup"
LEAK = "leak"
LOW_MEMORY = "low-memory"
_MAX_SAMPLES = const(0x3FFFFFFF)  # the count stops here: past it a 32-bit port's int is a heap object

DEFAULTS = {
    "window": 32,  # samples (duty cycles) compared; even, at least 4
    "leak_bytes": 256,  # growth of the floor within one window that is a leak
    "drift_bytes": 4096,  # growth of the floor since the first window that is a leak
    "warmup": 3,  # first samples ignored: imports and first-use caches settle there
    "min_free": 8192,  # below this much free heap after gc: act now
    # below this largest free block after gc: a window's largest allocation (a batch's
    # PUBLISH, about 1.5 KB at 20 readings) may not fit
    "min_block": 2048,
    "reset_on_leak": False,  # ask for a reset at a safe point when a leak is found
}


class MemWatch:
    """`settings`: the memwatch section of a checked configuration (config.py checks it
    at boot), or just the keys that differ from DEFAULTS. The watchdog is its own
    verdict (a second object would be heap on a board): the latest judgement, updated in
    place by every sample."""

    def __init__(self, settings=None):
        settings = dict(DEFAULTS, **settings) if settings else DEFAULTS
        self.window = settings["window"]
        self.leak_bytes = settings["leak_bytes"]
        self.drift_bytes = settings["drift_bytes"]
        self.warmup = settings["warmup"]
        self.min_free = settings["min_free"]
        self.min_block = settings["min_block"]
        self.reset_on_leak = settings["reset_on_leak"]
        # an array, not a list: storing a figure must not allocate an int object
        self._ring = array("i", bytes(4 * self.window))
        self._next = 0
        self._first_floor = -1
        self._step_floor = 0  # the floor right after the forgiven step
        self.verdict = self  # where readers look for the figures below
        self.status = WARMUP
        self.samples = 0
        self.used = 0
        self.free = 0
        self.peak = 0
        self.largest = 0  # the largest free block after the collection
        self.growth = 0  # bytes the floor rose within the window
        self.drift = 0  # bytes the floor rose since the first full window
        self.step = 0  # bytes of the one step forgiven (flat since), 0: none
        self.should_reset = False

    def as_dict(self):
        return {
            "status": self.status,
            "samples": self.samples,
            "used": self.used,
            "free": self.free,
            "peak": self.peak,
            "largest_free": self.largest,
            "growth": self.growth,
            "drift": self.drift,
            "step": self.step,
        }

    def __repr__(self):
        return "<memwatch %r>" % self.as_dict()  # the figures' names said once, there

    def observe_peak(self):
        """Note the allocation now, before any collection: calls at busy moments
        (mid-cycle) make the peak figure closer to the true high-water mark."""
        used = port.mem_alloc()
        if used > self.peak:
            self.peak = used
        return used

    def sample(self):
        """Collect, measure and judge. Returns the verdict: the watchdog itself."""
        self.observe_peak()
        port.collect()
        used = port.mem_alloc()
        if self.samples < _MAX_SAMPLES:
            self.samples += 1
        self.used = used
        self.free = port.mem_free()
        self.largest = port.largest_free()
        ringed = self.samples - self.warmup  # samples in the ring so far, past the warm-up
        if ringed > 0:
            self._ring[self._next] = used
            self._next = (self._next + 1) % self.window
        if ringed > 0 and (self.free < self.min_free or self.largest < self.min_block):
            status = LOW_MEMORY
        elif ringed < self.window:  # the ring is not full yet
            status = WARMUP
        else:
            half = self.window // 2
            oldest = self._floor(0, half)
            newest = self._floor(half, half)
            self.growth = newest - oldest
            floor = min(newest, oldest)
            if self._first_floor < 0:
                self._first_floor = floor
            self.drift = floor - self._first_floor
            quarter = half // 2
            if self.drift - self.step >= self.drift_bytes:
                status = LEAK
            elif self.growth < self.leak_bytes:
                status = OK
            # the newest half is all above the oldest one's floor: still rising, or flat since a step?
            elif (self._floor(half + quarter, half - quarter) - self._floor(half, quarter)) * 4 >= self.growth:
                status = LEAK
            else:
                if not self.step:
                    self.step = self.growth
                    self._step_floor = newest
                status = OK if newest < self._step_floor + self.leak_bytes else LEAK
        self.status = status
        self.should_reset = status == LOW_MEMORY or (status == LEAK and self.reset_on_leak)
        return self

    def _floor(self, start, count):
        # start counts from the oldest sample in the ring
        ring = self._ring
        window = self.window
        lowest = -1
        for i in range(count):
            value = ring[(self._next + start + i) % window]
            if lowest < 0 or value < lowest:
                lowest = value
        return lowest


async def drop_finished_tasks():
    """Let go of the task that finished under the running one. MicroPython's asyncio
    queue (a pairing heap, py/pairheap.h) leaves a task's child_last pointing at the
    last task queued under it, so the main task keeps that finished task alive, with
    its coroutine and all it referenced (a whole upload window's objects), until a
    later task takes the place. Here an empty task takes it. Call it before sampling,
    from the only task ready to run (the main loop between windows)."""
    import asyncio

    asyncio.create_task(_requeue())
    await asyncio.sleep(0)


async def _requeue():
    import asyncio

    await asyncio.sleep(0)  # queued again while the caller is the queue's head: under it


watch = MemWatch()  # the device's watchdog, shared by `free` and the duty cycle
