"""python -m tools.vboard: see tools/vboard/__init__.py."""

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile

import tools.vboard
from tools.sim7600_emu.model import clock_file
from tools.vboard import DEFAULT_HEAP, INTERRUPT_TIMEOUT_S, MICROPYTHON, VirtualBoard, install_library


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.vboard", description=tools.vboard.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", help="the board's flash (default: a new folder, printed)")
    parser.add_argument("--from-source", action="store_true",
                        help="a new flash gets lib/*.py in /lib, not the .mpy files `make deploy` ships")
    parser.add_argument("--heap", default=DEFAULT_HEAP,
                        help="heap size as for micropython -X heapsize (default %s)" % DEFAULT_HEAP)
    parser.add_argument("--modem", help="the emulator's UART, HOST:PORT (default $CELLMQTT_MODEM)")
    parser.add_argument("--control", help="the emulator's control port, HOST:PORT (default $CELLMQTT_CONTROL)")
    parser.add_argument("--device-id", help="the board's unique id in hex (default $CELLMQTT_DEVICE_ID)")
    parser.add_argument("--interrupt-timeout", type=float, default=INTERRUPT_TIMEOUT_S, metavar="S",
                        help="seconds for code to return to a prompt after Ctrl-C (default %.0f)"
                        % INTERRUPT_TIMEOUT_S)
    parser.add_argument("--micropython", default=MICROPYTHON,
                        help="the unix port's command (default .venv-micropython/bin/micropython)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9]+[KkMm]?", args.heap):
        parser.error("--heap: a size such as 110592, 256K or 1M, not %r" % args.heap)
    for flag, address in (("--modem", args.modem), ("--control", args.control)):
        if address is not None and not re.fullmatch(r"[^\s:]+:[0-9]+", address):
            parser.error("%s: HOST:PORT, not %r" % (flag, address))
    if not os.path.exists(args.micropython):
        parser.error("no MicroPython unix port at %s: run `make deps`" % args.micropython)
    if args.from_source and args.folder:
        parser.error("--from-source fills a new flash: leave out --folder")
    folder = args.folder
    if folder is None:
        folder = tempfile.mkdtemp(prefix="vboard-")
        install_library(folder, args.from_source)
    os.makedirs(folder, exist_ok=True)
    env = {}
    for name, value in (("CELLMQTT_MODEM", args.modem), ("CELLMQTT_CONTROL", args.control),
                        ("CELLMQTT_DEVICE_ID", args.device_id)):
        if value is not None:
            env[name] = value
    # the RTC and its memory in a clock file of this run: a reset keeps them, as a board's
    # RTC runs through resets; a new run of the virtual board is a power-on
    clock_folder = tempfile.mkdtemp(prefix="vboard-clock-")
    env["CELLMQTT_CLOCK"] = os.path.join(clock_folder, "clock")
    clock_file(env["CELLMQTT_CLOCK"], virtual=False)
    board = VirtualBoard(folder, args.heap, env, args.micropython, args.interrupt_timeout)

    def stop(signum, frame):
        board.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("FOLDER", board.folder)
    print("PTY", board.device, flush=True)
    try:
        board.serve()
    finally:
        shutil.rmtree(clock_folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
