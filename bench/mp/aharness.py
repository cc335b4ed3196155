# The asyncio half of the harness: the cycle loop of an async client (ours, mqtt_async).
import asyncio

import harness as h


async def run_cycles(opts, cycle, meter):
    """Warm-up, then the measured cycles; prints the RESULT lines."""
    for _ in range(opts["warmup"]):
        await cycle()
    tally = h.Tally(meter)
    if opts["track"]:
        tally.start_tracking(opts["cycles"])
    before = h.heap()
    start = h.ticks_ms()
    for _ in range(opts["cycles"]):
        tally.begin()
        await cycle()
        tally.end()
        if opts["track"]:
            tally.track()
    wall_ms = h.elapsed_ms(start)
    h.report(tally, wall_ms, tally.retained() if opts["track"] else (h.heap() - before, tally.cycles))


class Downlink:
    """Counts the downlink messages of a cycle; wait() returns once all arrived."""

    def __init__(self):
        self.count = 0
        self.event = asyncio.Event()

    def arrived(self, *message):
        self.count += 1
        if self.count >= h.DOWNLINKS:
            self.event.set()

    async def wait(self):
        await asyncio.wait_for(self.event.wait(), h.IO_TIMEOUT_S)
