"""Heap figures that the board's own memory watchdog (lib/cellmqtt/memwatch.py) reads
through the port layer, so that the fleet judges memory with the watchdog's code and
not a copy: the simulated boards' heaps (a model, as a thousand boards in one CPython
process share one heap) and the series a report replays from health messages."""

import contextlib

from cellmqtt import memwatch, port

_READS = ("mem_alloc", "mem_free", "largest_free", "collect")


class Figures:
    """One heap's figures: `busy` is what mem_alloc() says before a collection (the
    watchdog's peak), `used` after it; free memory and the largest free block."""

    def __init__(self):
        self.busy = self.used = self.free = self.largest = 0
        self._collected = False

    def set(self, used, busy, free, largest):
        self.used, self.busy, self.free, self.largest = used, busy, free, largest
        self._collected = False

    def mem_alloc(self):
        return self.used if self._collected else self.busy

    def mem_free(self):
        return self.free

    def largest_free(self):
        return self.largest

    def collect(self):
        self._collected = True


@contextlib.contextmanager
def reporting(figures):
    """The port layer's heap reads answered by `figures` (the watchdog's calls are
    synchronous, so nothing else runs meanwhile)."""
    saved = [(name, getattr(port, name)) for name in _READS]
    for name in _READS:
        setattr(port, name, getattr(figures, name))
    try:
        yield
    finally:
        for name, value in saved:
            setattr(port, name, value)


class Watch(memwatch.MemWatch):
    """The board's watchdog on given figures: sample() judges them as it would a heap."""

    def __init__(self, settings=None, figures=None):
        memwatch.MemWatch.__init__(self, settings)
        self.figures = figures or Figures()

    def observe_peak(self):
        with reporting(self.figures):
            return memwatch.MemWatch.observe_peak(self)

    def sample(self):
        with reporting(self.figures):
            return memwatch.MemWatch.sample(self)


def replay(series, settings=None):
    """The watchdog's verdict after each (used, peak, largest_free) sample, as dicts
    (memwatch.MemWatch.as_dict). Health messages carry no free figure: the largest free
    block stands for it (never more than the free memory)."""
    watch = Watch(settings)
    verdicts = []
    for used, peak, largest in series:
        watch.figures.set(used, peak, largest, largest)
        verdicts.append(watch.sample().as_dict())
    return verdicts
