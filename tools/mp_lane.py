"""The MicroPython test lane: each tests/test_*.py module in a fresh unix-port process
with a capped heap (as on a board, where only what one program imports is loaded),
then one total line `N passed, N failed`.

  python -m tools.mp_lane [--heap 256K] [--leak N] [--from-source] [module ...]

The tests import cellmqtt as the .mpy files `make deploy` ships (tools/mpy_build.py,
with the PC halves of the port layer), compiled into a temporary folder put first on
sys.path; --from-source imports lib/*.py instead, for debugging.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

from tools import mpy_build
from tools.board_files import ROOT

TESTS = os.path.join(ROOT, "tests")
MICROPYTHON = os.path.join(ROOT, ".venv-micropython", "bin", "micropython")
_MODULE_TIMEOUT_S = 600
_TOTAL = re.compile(r"^(\d+) passed, (\d+) failed$")


def modules():
    return sorted(name[:-3] for name in os.listdir(TESTS)
                  if name.startswith("test_") and name.endswith(".py"))


def run_module(module, heap, leak, lib=None):
    command = [MICROPYTHON, "-X", "heapsize=" + heap, "run.py"]
    if lib:
        command += ["--lib", lib]
    if leak:
        command += ["--leak", str(leak)]
    try:
        result = subprocess.run(command + [module], cwd=TESTS, capture_output=True, text=True,
                                timeout=_MODULE_TIMEOUT_S, check=False)
        output = result.stdout + result.stderr
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode() + "\nFAIL %s: timed out after %d s\n" % (
            module, _MODULE_TIMEOUT_S)
    lines = output.rstrip("\n").split("\n")
    match = _TOTAL.match(lines[-1]) if lines else None
    if match is None:  # the module died before its runner could count (import error, crash)
        return lines, 0, 1
    return lines[:-1], int(match.group(1)), int(match.group(2))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.mp_lane", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heap", default="256K",
                        help="each process's heap, as for micropython -X heapsize (default %(default)s)")
    parser.add_argument("--leak", type=int, default=0, metavar="N",
                        help="run each test N more times after warm-up and fail on any byte it retained "
                        "after gc (default 0: off)")
    parser.add_argument("--from-source", action="store_true", help="import lib/*.py, not the .mpy build")
    parser.add_argument("modules", nargs="*", metavar="module",
                        help="test modules (test_sensors) or tests (test_sensors.test_x) to run "
                        "(default: every tests/test_*.py)")
    args = parser.parse_args(argv)
    passed = failed = 0
    build = None if args.from_source else tempfile.mkdtemp(prefix="mp-lane-")
    try:
        lib = build and mpy_build.build_for_pc(build)
        for module in args.modules or modules():
            lines, module_passed, module_failed = run_module(module, args.heap, args.leak, lib)
            print("\n".join(lines), flush=True)
            passed += module_passed
            failed += module_failed
    finally:
        if build:
            shutil.rmtree(build)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
