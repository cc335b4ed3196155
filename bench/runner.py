"""Runs the MicroPython side: one unix-port process per measurement, from the .mpy
tree of bench/peers.py, its RESULT lines read back; and the search for the smallest
heap in which a client still completes its cycles."""

import os
import subprocess
import time

from tools.board_files import ROOT

MICROPYTHON = os.path.join(ROOT, ".venv-micropython", "bin", "micropython")
MEASURE_HEAP = "256K"  # the test lane's heap: room for every client, so none is squeezed
RUN_TIMEOUT_S = 600
_ENV_DROP = ("CELLMQTT_MODEM", "CELLMQTT_CONTROL", "CELLMQTT_TIME_SCALE", "MICROPYPATH")


class RunFailed(RuntimeError):
    def __init__(self, command, output):
        RuntimeError.__init__(self, "%s failed:\n%s" % (" ".join(command), output[-3000:]))
        self.output = output


class Runner:
    def __init__(self, build_dir, broker):
        self.build_dir = build_dir
        self.broker = broker
        self._runs = 0

    def tag(self):
        """A new 4-character run tag: names of the same length for every run."""
        self._runs += 1
        return "%04x" % (self._runs % 65536)

    def env(self, extra=None):
        env = {key: value for key, value in os.environ.items() if key not in _ENV_DROP}
        env["MICROPYPATH"] = ":.frozen:%s:%s" % (os.path.join(self.build_dir, "lib"),
                                                  os.path.join(self.build_dir, "peers"))
        env.update(extra or {})
        return env

    def run(self, module, heap=MEASURE_HEAP, env=None, **options):
        """RESULT figures of one process as {name: int}, plus "_wall_s"; RunFailed
        when it does not finish its work."""
        options.setdefault("tag", self.tag())
        options.setdefault("broker", self.broker)
        command = [MICROPYTHON, "-X", "heapsize=" + str(heap), "-m", module]
        command += ["%s=%s" % item for item in sorted(options.items())]
        started = time.monotonic()
        try:
            result = subprocess.run(command, cwd=os.path.join(self.build_dir, "mp"), env=self.env(env),
                                    capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
            output = result.stdout + result.stderr
        except subprocess.TimeoutExpired as expired:
            output = "%s%s\ntimed out after %d s" % (expired.stdout or "", expired.stderr or "", RUN_TIMEOUT_S)
            raise RunFailed(command, output)
        figures = {"_wall_s": time.monotonic() - started}
        for line in output.splitlines():
            words = line.split()
            if len(words) == 3 and words[0] == "RESULT":
                figures[words[1]] = int(words[2])
        if result.returncode != 0 or "done" not in figures:
            raise RunFailed(command, output)
        return figures

    def passes(self, module, heap_k, **options):
        try:
            self.run(module, heap="%dK" % heap_k, **options)
            return True
        except RunFailed:
            return False

    def smallest_heap(self, module, live_bytes, **options):
        """The smallest -X heapsize (KiB) in which the run completes: any heap below the
        live heap seen in the run is too small, so the search starts there, doubles the
        step up to a passing size and bisects between, to 1 KiB. Returns (KiB, probes)."""
        low = max(1, live_bytes // 1024)  # known to fail: smaller than the live data
        step = max(4, low // 4)
        high = low + step
        probes = 1
        while not self.passes(module, high, **options):
            low = high
            step *= 2
            high = low + step
            probes += 1
            if high > 4096:
                raise RunFailed([module], "no heap up to 4 MiB runs it")
        while high - low > 1:
            middle = (low + high) // 2
            probes += 1
            if self.passes(module, middle, **options):
                high = middle
            else:
                low = middle
        return high, probes
