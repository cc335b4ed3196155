"""Which files go on the board, in one place: the mpy build, the type gate and
deploy all take their lists from here.

  python -m tools.board_files

Prints the files that run on the board (lib/cellmqtt without the PC-only modules, then
boot.py and main.py), space-separated and relative to the repository root, as the type
gate of `make test` gives them to mypy.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
APP_FILES = ("boot.py", "main.py")
# PC-only halves of the port layer (a board on a PC needs them), the broker's half of the
# MQTT codec and the synthetic sensor (tests and tools): the board never imports them.
PC_PORT = ("cellmqtt/port/cpython.py", "cellmqtt/port/unix.py", "cellmqtt/port/_pc.py")
PC_ONLY = PC_PORT + ("cellmqtt/mqtt/server_codec.py", "cellmqtt/synthetic.py")


def lib_sources(include_pc=False):
    """Paths of lib/ relative to lib/, sorted."""
    found = []
    for folder, _, names in os.walk(os.path.join(LIB, "cellmqtt")):
        for name in names:
            if name.endswith(".py"):
                relative = os.path.relpath(os.path.join(folder, name), LIB)
                if include_pc or relative not in PC_ONLY:
                    found.append(relative)
    return sorted(found)


def app_sources():
    """boot.py and main.py, those of them that exist, relative to the repo root."""
    return [name for name in APP_FILES if os.path.exists(os.path.join(ROOT, name))]


def board_paths():
    """Absolute paths of everything that runs on the board."""
    return [os.path.join(LIB, p) for p in lib_sources()] + [os.path.join(ROOT, p) for p in app_sources()]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.board_files", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    print(" ".join(os.path.relpath(path, ROOT) for path in board_paths()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
