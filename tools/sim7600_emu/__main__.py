"""The emulator's command line (see the package docstring)."""

import argparse
import asyncio
import datetime
import logging
import signal
import sys

try:  # libuv's event loop: a window's exchanges cost the emulator about a quarter less CPU
    import uvloop
except ImportError:  # not on every platform (Windows): asyncio's own loop serves the same
    uvloop = None

from . import Emulator
from . import quirks as quirklib
from .faults import parse_spec
from .model import DEFAULT_PINS, parse_pins


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m tools.sim7600_emu",
        description="A SIM7600 modem on this PC: its UART over TCP, its pins on a control port. "
                    "Prints `UART host:port` (or `PTY /dev/pts/N`) and `CONTROL host:port`, then serves "
                    "until SIGTERM or SIGINT.",
        epilog="The model, the control port's requests, the faults and the quirks: the package's "
               "docstring (python -m pydoc tools.sim7600_emu).")
    parser.add_argument("--listen", default="127.0.0.1:7600", metavar="HOST:PORT",
                        help="where the UART listens (port 0: any free port; default %(default)s)")
    parser.add_argument("--control", default="127.0.0.1:7601", metavar="HOST:PORT",
                        help="where the control port listens (port 0: any free port; default %(default)s)")
    parser.add_argument("--power", choices=("on", "off"), default="off",
                        help="start booted and answering, or off until PWRKEY (default off)")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="F",
                        help="wall seconds per model second; 0 makes every latency zero (default 1: real time)")
    parser.add_argument("--pins", metavar="NAME=GPIO,...",
                        default=",".join("%s=%d" % item for item in DEFAULT_PINS.items()),
                        help="the board's wiring, over the LilyGO T-SIM7600X defaults (%(default)s)")
    parser.add_argument("--fault", action="extend", nargs="+", default=[],
                        metavar="NAME[:K=V,...]", help="inject faults at start (repeatable)")
    parser.add_argument("--quirk", action="append", default=[], metavar="NAME",
                        help="a field behaviour the modem has all the time (repeatable; all: "
                             "every one; see --list-quirks)")
    parser.add_argument("--list-quirks", action="store_true",
                        help="print the quirks, one a line with what it does, and exit")
    parser.add_argument("--pty", action="store_true",
                        help="serve the UART on a pseudo-terminal instead of TCP")
    parser.add_argument("--seed", type=int,
                        help="seed for the random parts (ADC noise, garbage; default: a random one)")
    parser.add_argument("--clock", type=_utc_ms, metavar="YYYY-MM-DDTHH:MM:SSZ",
                        help="UTC when the emulator starts, for AT+CCLK?, +CTZV and AT+CNTP "
                             "(default: the host's UTC now)")
    parser.add_argument("--inputs", metavar="FILE",
                        help="a simulated board's input file: the emulator keeps STATUS and RI there, "
                             "for the board to read without a control request")
    parser.add_argument("--trace", action="store_true",
                        help="log every UART byte in both directions on stderr")
    return parser


def _utc_ms(value):
    """`2031-05-01T00:00:00Z` -> UTC epoch ms."""
    try:
        moment = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise argparse.ArgumentTypeError("expected YYYY-MM-DDTHH:MM:SSZ, got %r" % value) from None
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000.0


async def _serve(args, pins, faults):
    emulator = Emulator(power_on=args.power == "on", time_scale=args.time_scale, pins=pins,
                        seed=args.seed, quirks=args.quirk, clock=args.clock,
                        inputs=args.inputs)
    if args.trace:
        emulator.modem.trace = lambda direction, data: logging.info("%s %r", direction, data)
    await emulator.start(uart=args.listen, control=args.control, pty=args.pty)
    try:
        for name, params in faults:
            emulator.fault(name, **params)
        print("PTY " + emulator.pty_path if args.pty else "UART " + emulator.uart_address)
        print("CONTROL " + emulator.control_address, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        await stop.wait()
    finally:
        await emulator.stop()
    return 0


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list_quirks:
        print(quirklib.listing())
        return 0
    logging.basicConfig(stream=sys.stderr, format="sim7600_emu: %(message)s",
                        level=logging.INFO if args.trace else logging.WARNING)
    try:
        if not args.time_scale >= 0:
            raise ValueError("--time-scale must be >= 0")
        pins = parse_pins(args.pins)
        faults = [parse_spec(spec) for spec in args.fault]
        quirklib.parse(args.quirk)
    except ValueError as problem:
        parser.error(str(problem))
    try:
        return (asyncio.run if uvloop is None else uvloop.run)(_serve(args, pins, faults))
    except (OSError, ValueError) as problem:
        print("sim7600_emu: %s" % problem, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
