# The asyncio half of the harness: the cycle loop of an async client (ours, mqtt_async).
import asyncio

import harness as h

SETTLE_MS = 1500


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
        if meter.sampling:  # the peak counts from a start that holds nothing of the last cycle
            await settle()
        tally.begin()
        await cycle()
        tally.end()
        if opts["track"]:
            await drop_finished_tasks()  # or the sample counts the last connection's objects
            tally.track()
    wall_ms = h.elapsed_ms(start)
    h.report(tally, wall_ms, tally.retained() if opts["track"] else (h.heap() - before, tally.cycles))


async def settle():
    """Give the last cycle's tasks SETTLE_MS to end, then drop them: a client's task that
    sleeps before it notices the disconnect (mqtt_async's reconnect keeper: 1 s) holds
    that connection's objects, which a start taken earlier counts and the cycle then
    frees, hiding as much of its peak (1.6 KB of mqtt_async's). A duty cycle sleeps far
    longer between connections."""
    await asyncio.sleep_ms(SETTLE_MS)
    await drop_finished_tasks()


async def drop_finished_tasks():
    """Let go of the task that finished under this one, as the duty cycle does before
    its memory sample (cellmqtt.memwatch.drop_finished_tasks, not imported: mqtt_async
    runs here too). MicroPython's asyncio queue (a pairing heap, py/pairheap.h) leaves
    the running task's child_last on the last task queued under it, so the main task
    keeps that finished task, its coroutine and all it referenced (the last
    connection's client, stream and link: 0.5 to 7 KB, depending on which task it was)
    until a later task takes the place. Here an empty task takes it."""
    asyncio.create_task(_requeue())
    await asyncio.sleep(0)


async def _requeue():
    await asyncio.sleep(0)  # queued again while the caller is the queue's head: under it


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
