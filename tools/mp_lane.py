"""The MicroPython test lane: each tests/test_*.py module in a fresh unix-port process
with a capped heap (as on a board, where only what one program imports is loaded),
then one total line `N passed, N failed`.

  python -m tools.mp_lane [--heap 256K] [--leak N] [module ...]
"""

import argparse
import os
import re
import subprocess
import sys

from tools.board_files import ROOT

TESTS = os.path.join(ROOT, "tests")
MICROPYTHON = os.path.join(ROOT, ".venv-micropython", "bin", "micropython")
_MODULE_TIMEOUT_S = 600
_TOTAL = re.compile(r"^(\d+) passed, (\d+) failed$")


def modules():
    return sorted(name[:-3] for name in os.listdir(TESTS)
                  if name.startswith("test_") and name.endswith(".py"))


def run_module(module, heap, leak):
    command = [MICROPYTHON, "-X", "heapsize=" + heap, "run.py"]
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heap", default="256K")
    parser.add_argument("--leak", type=int, default=0)
    parser.add_argument("modules", nargs="*")
    args = parser.parse_args(argv)
    passed = failed = 0
    for module in args.modules or modules():
        lines, module_passed, module_failed = run_module(module, args.heap, args.leak)
        print("\n".join(lines), flush=True)
        passed += module_passed
        failed += module_failed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
