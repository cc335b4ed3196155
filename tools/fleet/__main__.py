"""The command line of `python -m tools.fleet` (see the package docstring)."""

import argparse
import json
import os
import sys

from tools.board_files import LIB, ROOT

EXAMPLE_CONFIG = os.path.join(ROOT, "config.example.json")
SIM_MEMWATCH = "window=4,warmup=1"  # a watchdog that can judge within a few windows
EXIT_OK = 0
EXIT_FLAGGED = 1  # report: a device flagged; collect, sim: could not run
EXIT_USAGE = 2


def parse_memwatch(text):
    """K=V,... -> {key: JSON value} (window=4,reset_on_leak=true)."""
    settings = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        try:
            settings[key.strip()] = json.loads(value)
        except ValueError:
            sep = ""
        if not sep:
            raise argparse.ArgumentTypeError("expected KEY=VALUE,... (window=4,warmup=1), got %r" % item)
    return settings


def _address(text):
    host, sep, number = text.rpartition(":")
    if not sep or not host or not number.isdigit() or not 0 < int(number) < 65536:
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return text


def _parser():
    parser = argparse.ArgumentParser(prog="python -m tools.fleet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="collect|report|sim")
    broker = os.environ.get("CELLMQTT_BROKER", "127.0.0.1:1883")
    default_config = "config.json" if os.path.exists("config.json") else EXAMPLE_CONFIG

    collect = commands.add_parser("collect", help="store what the boards send")
    collect.add_argument("--broker", type=_address, default=broker, help="HOST:PORT (default %(default)s)")
    collect.add_argument("--db", default="fleet.db", help="SQLite file or postgresql:// URL (default %(default)s)")
    collect.add_argument("--config", default=default_config,
                         help="the boards' config.json: its topic templates (default %(default)s)")
    collect.add_argument("--share", metavar="GROUP", help="subscribe as $share/GROUP/...: collectors split the load")
    collect.add_argument("--client-id", default="fleet-collector",
                         help="the persistent session's id: each collector of a group needs its own "
                              "(default %(default)s)")
    collect.add_argument("--max-packet", type=int, default=256 * 1024, metavar="BYTES",
                         help="a larger message is rejected as oversized (default %(default)s)")
    collect.add_argument("--max-unacked", type=int, default=1000, metavar="N",
                         help="messages held uncommitted at once; keep it above the broker's in-flight "
                              "limit (mosquitto max_inflight_messages, 20) (default %(default)s)")

    report = commands.add_parser("report", help="account for every reading and every board's memory")
    report.add_argument("--db", default="fleet.db", help="SQLite file or postgresql:// URL (default %(default)s)")
    report.add_argument("--grace", type=float, default=3600, metavar="S",
                        help="a gap older than this flags its device (default %(default)s s)")
    report.add_argument("--config", help="take the watchdog settings from this config.json's memwatch section")
    report.add_argument("--memwatch", type=parse_memwatch, default={}, metavar="K=V,...",
                        help="watchdog settings for the replay, over --config's (default: the board's defaults)")
    report.add_argument("--on-ma", type=float, default=500.0, help="modem current when on (default %(default)s mA)")
    report.add_argument("--sleep-ma", type=float, default=0.02,
                        help="board current asleep (default %(default)s mA)")
    report.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    report.add_argument("--html", metavar="DIR", help="also write DIR/index.html, a page with a plot per device")

    sim = commands.add_parser("sim", help="simulated boards against a broker")
    sim.add_argument("--boards", type=int, required=True, metavar="N")
    sim.add_argument("--windows", type=int, required=True, metavar="W", help="upload windows per board")
    sim.add_argument("--broker", type=_address, default=broker, help="HOST:PORT on loopback (default %(default)s)")
    sim.add_argument("--fault-rate", type=float, default=0.0, metavar="R",
                     help="share of windows given a random modem fault (tools/soak_faults.py)")
    sim.add_argument("--leaky-board", type=int, metavar="K", help="board K (1..N) keeps --leak-bytes per window")
    sim.add_argument("--leak-bytes", type=int, default=512, metavar="B", help="(default %(default)s)")
    sim.add_argument("--config", default=EXAMPLE_CONFIG, help="the boards' config.json (default %(default)s)")
    sim.add_argument("--memwatch", type=parse_memwatch, default=parse_memwatch(SIM_MEMWATCH), metavar="K=V,...",
                     help="the boards' watchdog settings over --config's (default %s); give report "
                          "the same" % SIM_MEMWATCH)
    sim.add_argument("--time-scale", type=float, default=0.02, metavar="F",
                     help="board sleeps run F times as long (default %(default)s)")
    sim.add_argument("--prefix", default="sim", help="device ids are PREFIX0001... (default %(default)s)")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--json", metavar="FILE", help="write the run's figures, per board too")
    return parser


def _check(parser, args):
    if args.command == "sim":
        if args.boards < 1 or args.windows < 1 or not 0 <= args.fault_rate <= 1 or args.time_scale <= 0:
            parser.error("--boards and --windows 1 or more, --fault-rate 0..1, --time-scale above 0")
        if args.leaky_board is not None and not 1 <= args.leaky_board <= args.boards:
            parser.error("--leaky-board: a board number from 1 to %d" % args.boards)
        # before cellmqtt loads: the port layer reads it once
        os.environ["CELLMQTT_TIME_SCALE"] = repr(args.time_scale)
    elif args.command == "collect" and (args.max_packet < 1024 or args.max_unacked < 1):
        parser.error("--max-packet 1024 or more, --max-unacked 1 or more")


def _report(args, log):
    from cellmqtt import config
    from cellmqtt.errors import ConfigError

    from . import html, report
    from .db import DatabaseError, open_db

    settings = {}
    try:
        if args.config:
            with open(args.config) as source:
                settings = json.load(source).get("memwatch", {})
        settings = dict(settings, **args.memwatch)
        config.check_memwatch(settings)
    except (OSError, ValueError, ConfigError) as error:
        log("report: watchdog settings: %s" % error)
        return EXIT_USAGE
    try:
        db = open_db(args.db, create=False)
        try:
            found = report.analyse(db, args.grace, settings, args.on_ma, args.sleep_ma)
        finally:
            db.close()
    except DatabaseError as error:
        log("report: database %s" % error)
        return EXIT_FLAGGED
    print(report.as_json(found) if args.json else report.table(found))
    if args.html:
        log("report: %s written" % html.write(found, args.html))
    return EXIT_FLAGGED if found["fleet"]["flagged"] else EXIT_OK


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    if LIB not in sys.path:
        sys.path.insert(0, LIB)

    def log(text):
        print(text, file=sys.stderr, flush=True)

    if args.command == "report":
        return _report(args, log)
    from cellmqtt.errors import ConfigError

    from . import messages

    try:
        with open(args.config) as source:
            raw = json.load(source)
        if args.command == "collect":
            routes = messages.Routes(messages.templates(raw))
        else:
            from . import sim

            raw = sim.board_config(raw, args.broker, args.memwatch)
    except (OSError, ValueError, ConfigError) as error:
        log("%s: --config %s: %s" % (args.command, args.config, error))
        return EXIT_USAGE
    if args.command == "collect":
        from . import collect

        return collect.run(args, routes, log)
    try:
        sim.run(args, raw, log)
    except sim.SimError as error:
        log("sim: %s" % error)
        return EXIT_FLAGGED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
