"""The MicroPython test lane: each tests/test_*.py module in a fresh unix-port process
with a capped heap (as on a board, where only what one program imports is loaded),
then one total line `N passed, N failed`.

  python -m tools.mp_lane [--heap 256K] [--leak N] [--jobs N] [--from-source] [module ...]

The tests import cellmqtt as the .mpy files `make deploy` ships (tools/mpy_build.py,
with the PC halves of the port layer), compiled into a temporary folder put first on
sys.path; --from-source imports lib/*.py instead, for debugging.

The modules run in --jobs processes at a time, each job with a tools.services set of
its own (a module drives the emulator, a stateful modem, and must have it alone); a
module's output is printed whole when it ends. With --jobs 1 under
`python -m tools.services` (CELLMQTT_MODEM set) the modules use those services.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

from tools import mpy_build
from tools.board_files import ROOT

TESTS = os.path.join(ROOT, "tests")
MICROPYTHON = os.path.join(ROOT, ".venv-micropython", "bin", "micropython")
_MODULE_TIMEOUT_S = 600
_TOTAL = re.compile(r"^(\d+) passed, (\d+) failed$")


def modules():
    return sorted(name[:-3] for name in os.listdir(TESTS)
                  if name.startswith("test_") and name.endswith(".py"))


def run_module(module, heap, leak, lib=None, env=None):
    command = [MICROPYTHON, "-X", "heapsize=" + heap, "run.py"]
    if lib:
        command += ["--lib", lib]
    if leak:
        command += ["--leak", str(leak)]
    timed_out = None
    try:
        result = subprocess.run(command + [module], cwd=TESTS, capture_output=True, text=True,
                                timeout=_MODULE_TIMEOUT_S, check=False, env=env)
        output, errors = result.stdout, result.stderr
    except subprocess.TimeoutExpired as expired:
        output, errors = (expired.stdout or b"").decode(), (expired.stderr or b"").decode()
        timed_out = "timed out after %d s" % _MODULE_TIMEOUT_S
    lines = output.rstrip("\n").split("\n")
    match = _TOTAL.match(lines[-1]) if lines and not timed_out else None
    lines = lines[:-1] if match else lines
    if errors:  # what MicroPython printed aside (a task's exception nobody awaited): shown, not a failure
        lines += errors.rstrip("\n").split("\n")
    if match is None:  # it died before its runner could count (import error, crash), or hung
        return lines + ["FAIL %s: %s" % (module, timed_out or "no total line from its runner")], 0, 1
    return lines, int(match.group(1)), int(match.group(2))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.mp_lane", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heap", default="256K",
                        help="each process's heap, as for micropython -X heapsize (default %(default)s)")
    parser.add_argument("--leak", type=int, default=0, metavar="N",
                        help="run each test N more times after warm-up and fail on any byte it retained "
                        "after gc (default 0: off)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="modules run N at a time, each job with its own services (default 1)")
    parser.add_argument("--from-source", action="store_true", help="import lib/*.py, not the .mpy build")
    parser.add_argument("modules", nargs="*", metavar="module",
                        help="test modules (test_sensors) or tests (test_sensors.test_x) to run "
                        "(default: every tests/test_*.py)")
    args = parser.parse_args(argv)
    build = None if args.from_source else tempfile.mkdtemp(prefix="mp-lane-")
    try:
        lib = build and mpy_build.build_for_pc(build)
        passed, failed = _run_all(args.modules or modules(), max(1, args.jobs), args, lib)
    finally:
        if build:
            shutil.rmtree(build)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


def _run_all(selected, jobs, args, lib):
    """Each module once, `jobs` at a time; (passed, failed) over all of them."""
    pending = list(selected)
    totals = [0, 0]
    lock = threading.Lock()

    def job():
        with _job_services(jobs) as env:
            while True:
                with lock:
                    if not pending:
                        return
                    module = pending.pop(0)
                lines, module_passed, module_failed = run_module(module, args.heap, args.leak, lib, env)
                with lock:
                    print("\n".join(lines), flush=True)
                    totals[0] += module_passed
                    totals[1] += module_failed

    def guarded():
        try:
            job()
        except Exception as error:  # a job whose services did not start fails the lane
            with lock:
                print("FAIL mp_lane job: %s" % error, flush=True)
                totals[1] += 1

    threads = [threading.Thread(target=guarded) for _ in range(min(jobs, len(pending)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # a module no job could run (its services did not start) counts as one failed
    return totals[0], totals[1] + len(pending)


class _job_services:
    """The environment of one job's modules: this process's own when it runs under
    tools.services with one job, else a tools.services set of the job's own."""

    def __init__(self, jobs):
        self._services = None
        self._shared = jobs == 1 and os.environ.get("CELLMQTT_MODEM")

    def __enter__(self):
        if self._shared:
            return None
        from tools.services import Services

        self._services = Services().start()
        return dict(os.environ, **self._services.env)

    def __exit__(self, *exc):
        if self._services is not None:
            self._services.stop()


if __name__ == "__main__":
    sys.exit(main())
