# What every client's runner shares under the MicroPython unix port: the workload,
# the command line, byte counts and heap samples at every I/O operation, and the
# RESULT lines the bench reads. Kept small: it is loaded into the measured heap.
import gc
import sys
import time

PAYLOAD_BYTES = 200
PUBLISHES = 10
DOWNLINKS = 2
KEEPALIVE_S = 60
IO_TIMEOUT_S = 10  # a broker or helper that stops answering fails the run, never hangs it
_IPPROTO_TCP = 6
_TCP_NODELAY = 1


def options():
    """key=value arguments: tag, broker host:port, cycles, warmup, qos, mode (time:
    plain runs; peak: a heap sample at every I/O operation), nodelay (TCP_NODELAY on
    a blocking client's socket), track (retained bytes from the heap after gc at the
    end of every cycle, see Tally.track)."""
    found = {"cycles": "1", "warmup": "2", "qos": "1", "mode": "time", "nodelay": "0", "track": "0"}
    for item in sys.argv[1:]:
        key, _, value = item.partition("=")
        found[key] = value
    for key in ("cycles", "warmup", "qos", "nodelay", "track"):
        found[key] = int(found[key])
    found["host"], _, port = found["broker"].rpartition(":")
    found["port"] = int(port)
    return found


class Workload:
    """The names and payloads of one run: the same lengths for every client."""

    def __init__(self, tag, qos):
        self.keepalive_s = KEEPALIVE_S
        self.downlinks = DOWNLINKS
        self.client_id = "bench-" + tag
        self.up = "bench/%s/up" % tag
        self.down = "bench/%s/down" % tag
        self.qos = qos
        # payload i starts with its digit: the helper answers the last one with the downlink
        self.payloads = [bytes((48 + i,)) + b"x" * (PAYLOAD_BYTES - 1) for i in range(PUBLISHES)]


class Meter:
    """Bytes each way, and (mode peak) the live heap after a collection at every I/O
    operation, as the highest value above the cycle's starting point."""

    def __init__(self, sampling):
        self.sampling = sampling
        self.sent = 0
        self.received = 0
        self.high = 0

    def sample(self):
        if self.sampling:
            gc.collect()
            used = gc.mem_alloc()
            if used > self.high:
                self.high = used


class CountingSocket:
    """A blocking socket as umqtt uses it (read, write, setblocking, close), counted."""

    def __init__(self, meter, sock, nodelay):
        self._meter = meter
        self._sock = sock
        self._nodelay = nodelay

    def connect(self, address):
        self._sock.settimeout(IO_TIMEOUT_S)
        if self._nodelay:  # long runs: no Nagle wait behind each small write
            self._sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
        self._sock.connect(address)

    def write(self, data, size=None):
        if size is not None:
            data = memoryview(data)[:size]
        self._meter.sample()
        self._meter.sent += len(data)
        return self._sock.write(data)

    def read(self, size):
        self._meter.sample()
        data = self._sock.read(size)
        if data:
            self._meter.received += len(data)
        self._meter.sample()
        return data

    def setblocking(self, flag):
        if flag:
            self._sock.settimeout(IO_TIMEOUT_S)
        else:
            self._sock.setblocking(False)

    def close(self):
        self._sock.close()


class CountingStream:
    """The library's Stream (async read, write, close), counted; counts=False only
    samples (the modem UART under the MQTT link)."""

    def __init__(self, meter, stream, counts=True):
        self._meter = meter
        self._stream = stream
        self._counts = counts

    async def read(self, size):
        self._meter.sample()
        data = await self._stream.read(size)
        if self._counts:
            self._meter.received += len(data)
        self._meter.sample()
        return data

    async def write(self, data):
        self._meter.sample()
        if self._counts:
            self._meter.sent += len(data)
        await self._stream.write(data)

    async def close(self):
        await self._stream.close()


class AioCountingStream:
    """An asyncio.Stream (async read; write() buffers, drain() sends; close(),
    wait_closed()), counted: what mqtt_async gets from open_connection."""

    def __init__(self, meter, stream):
        self._meter = meter
        self._stream = stream

    async def read(self, size):
        self._meter.sample()
        data = await self._stream.read(size)
        self._meter.received += len(data)
        self._meter.sample()
        return data

    def write(self, data):
        self._meter.sample()
        self._meter.sent += len(data)
        self._stream.write(data)

    async def drain(self):
        await self._stream.drain()

    def close(self):
        self._stream.close()

    async def wait_closed(self):
        await self._stream.wait_closed()


def heap():
    gc.collect()
    return gc.mem_alloc()


def ticks_ms():
    return time.ticks_ms()


def elapsed_ms(start):
    return time.ticks_diff(time.ticks_ms(), start)


class Tally:
    """Figures of the measured cycles (warm-up excluded)."""

    def __init__(self, meter):
        self.meter = meter
        self.cycles = 0
        self.peak = 0
        self.live = 0  # the highest live heap seen, absolute
        self.sent = 0
        self.received = 0
        self._start = 0
        self._sent = 0
        self._received = 0
        self._quarter = self._half = 0
        self._early = self._late = None

    def begin(self):
        meter = self.meter
        if meter.sampling:  # a collection per cycle only where the peak is measured
            self._start = heap()
            meter.high = self._start
        self._sent = meter.sent
        self._received = meter.received

    def end(self):
        meter = self.meter
        meter.sample()
        self.cycles += 1
        if meter.high - self._start > self.peak:
            self.peak = meter.high - self._start
        if meter.high > self.live:
            self.live = meter.high
        self.sent += meter.sent - self._sent
        self.received += meter.received - self._received


    def start_tracking(self, cycles):
        self._quarter = cycles // 4
        self._half = cycles // 2

    def track(self):
        """The heap after gc at the end of a cycle, as the soak judges it
        (tools/soak_report.py): the first quarter is warm-up; the floor (lowest value)
        of the second quarter is compared with that of the second half, so work still
        settling when some cycle returns does not count, and a leak does."""
        used = heap()
        if self._quarter < self.cycles <= self._half:
            self._early = used if self._early is None else min(self._early, used)
        elif self.cycles > self._half:
            self._late = used if self._late is None else min(self._late, used)

    def retained(self):
        return self._late - self._early, self._half - self._quarter


def run_cycles(opts, cycle, meter):
    """Warm-up, then the measured cycles of a blocking client; prints the RESULT lines."""
    for _ in range(opts["warmup"]):
        cycle()
    tally = Tally(meter)
    if opts["track"]:
        tally.start_tracking(opts["cycles"])
    before = heap()
    start = ticks_ms()
    for _ in range(opts["cycles"]):
        tally.begin()
        cycle()
        tally.end()
        if opts["track"]:
            tally.track()
    wall_ms = elapsed_ms(start)
    report(tally, wall_ms, tally.retained() if opts["track"] else (heap() - before, tally.cycles))


def report(tally, wall_ms, retained):
    """The RESULT lines, read by bench/runner.py; retained is (bytes, over cycles)."""
    cycles = tally.cycles or 1
    print("RESULT cycles %d" % tally.cycles)
    print("RESULT peak %d" % tally.peak)
    print("RESULT live %d" % tally.live)
    print("RESULT sent %d" % (tally.sent // cycles))
    print("RESULT received %d" % (tally.received // cycles))
    print("RESULT sent_total %d" % tally.sent)
    print("RESULT received_total %d" % tally.received)
    print("RESULT wall_ms %d" % wall_ms)
    print("RESULT retained %d" % retained[0])
    print("RESULT retained_span %d" % retained[1])
    print("RESULT done 1")
