"""The benchmark of `make bench`: our MQTT client side by side with umqtt.simple,
umqtt.robust and mqtt_async, and against the protocol's and the modem manual's minimum.

  python -m bench [--out DIR] [--skip GROUP ... | --only GROUP ...]

Fetches the peers (bench/peers.py), starts a mosquitto of its own, the workload's
downlink helper and two SIM7600 emulators (one without latencies for the link runs, one
at real time for the upload window), then measures, in this order: heap peaks, wire
bytes and wall time, retained bytes, the smallest heap, the modem window, the codecs,
the firmware's heap on a 32-bit MicroPython (tools/footprint.py), and the smallest heap
in which the simulated board runs 200 windows on each transport (AT, TLS, PPP), and the
simulated board's flash wear (bytes written and blocks erased on its littlefs). Writes
DIR/results.json and DIR/RESULTS.md (DIR: bench/) and prints the table with PASS or MISS
for each target. Exits 1 if a measurement could not be made (a missed target is a
result, not an error). --only runs the groups named and nothing else (`--only retained`:
the retained bytes of every client) and prints their table, writing the two files only
where --out says, so bench/ keeps the last full run.

Workload of one cycle, the same for every client: connect (clean session, keepalive
60), subscribe to the cycle's down topic, publish 10 messages of 200 bytes (QoS 1, and
in a second variant QoS 0), receive the 2 downlink messages (64 bytes) that the helper
publishes when the last uplink message reaches it, disconnect.
"""

import argparse
import os
import sys
import time

from tools.board_files import LIB, ROOT

sys.path.insert(0, LIB)

from bench import fleet, peers  # noqa: E402
from bench.helper import Helper  # noqa: E402
from bench.runner import Runner  # noqa: E402
from bench.stages import Bench, Plan, versions  # noqa: E402
from tools.services import EmulatorProcess, Mosquitto  # noqa: E402

GROUPS = ("heap", "wire", "retained", "floor", "modem", "codec", "footprint", "boards", "flash", "fleet")


def preamble(found, plan, elapsed_s):
    lines = ["Measured by `make bench` in one run (%.0f s): %s." % (
        elapsed_s, ", ".join("%s %s" % item for item in sorted(found.items())))]
    lines.append("Heap figures under the MicroPython unix port (64-bit: objects are about twice an "
                 "ESP32's), all code as .mpy, `-X heapsize=256K` except the smallest-heap search. "
                 "Peak: the live heap after gc at every read and write of the client's socket "
                 "(and of the modem UART), above the cycle's start, taken 1.5 s after the last cycle "
                 "(once its tasks have ended). Retained: the floor of the "
                 "heap after gc at the end of each cycle, second quarter against second half of "
                 "the run, as the soak judges it. Heap runs give blocking clients TCP_NODELAY; "
                 "over a socket our client and mqtt_async both open theirs with asyncio's "
                 "open_connection, and ours loads the port layer an ESP32 loads (mqtt_async gets "
                 "stand-ins for network and machine); "
                 "wall times use default sockets. Link runs: the SIM7600 emulator without "
                 "latencies; the upload window: its latency model at time scale %s. "
                 "32-bit rows: `python -m tools.footprint` on the webassembly port under node (heap "
                 "in use after gc, stand-ins for what a board has; the window runs in-process on a "
                 "scripted SIM7600), against the budgets of an ESP32 without PSRAM." % plan.modem_scale)
    return "\n".join(lines) + "\n\n"


def measure(bench, groups, modem_emulator, broker):
    steps = [("heap", bench.heap_peaks), ("wire", bench.wire_and_time), ("retained", bench.retained),
             ("floor", bench.floors), ("modem", lambda: bench.modem(modem_emulator, broker)),
             ("codec", bench.codecs), ("footprint", bench.footprint), ("boards", bench.board_heaps),
             ("flash", bench.flash),
             ("fleet", lambda: fleet.measure(bench.results, fleet.Plan()))]
    for group, step in steps:
        if group in groups:
            started = time.monotonic()
            print("%s ..." % group, flush=True)
            step()
            print("%s: %.0f s" % (group, time.monotonic() - started), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="where results.json and RESULTS.md go (default bench/; with --only: nowhere)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--skip", nargs="*", default=[], choices=GROUPS, metavar="GROUP",
                        help="leave these groups out (%s)" % ", ".join(GROUPS))
    choice.add_argument("--only", nargs="+", choices=GROUPS, metavar="GROUP",
                        help="run these groups and nothing else")
    args = parser.parse_args(argv)
    if args.only:
        groups = [group for group in GROUPS if group in args.only]
    else:
        groups = [group for group in GROUPS if group not in args.skip]
        args.out = args.out or os.path.join(ROOT, "bench")
    if "floor" in groups and "heap" not in groups:
        parser.error("floor needs heap (the search starts at the live heap the peak runs saw)")
    started = time.monotonic()
    plan = Plan()
    print("fetching the peers ...", flush=True)
    files, peer_versions = peers.fetch()
    build = peers.build(files)
    services = []
    try:
        broker = Mosquitto().start()
        services.append(broker)
        link_emulator = EmulatorProcess("--power", "on", "--time-scale", "0").start()
        services.append(link_emulator)
        modem_emulator = EmulatorProcess("--time-scale", repr(plan.modem_scale)).start()
        services.append(modem_emulator)
        helper = Helper(broker.address).start()
        services.append(helper)
        runner = Runner(build, broker.address)
        bench = Bench(runner, plan, link_emulator)
        measure(bench, groups, modem_emulator, broker.address)
        if helper.error is not None:
            raise RuntimeError("the downlink helper failed: %s" % helper.error)
        found = versions(runner, peer_versions)
    finally:
        for service in reversed(services):
            service.stop()
    results = bench.results
    table = results.markdown(preamble(found, plan, time.monotonic() - started))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "results.json"), "w") as out:
            out.write(results.json())
        with open(os.path.join(args.out, "RESULTS.md"), "w") as out:
            out.write(table)
    print()
    print(table)
    for figure in results.figures:
        if figure.target is not None:
            print("%s  %s / %s: %s (target %s)" % ("PASS" if figure.passed else "MISS", figure.name,
                                                  figure.client, figure.value, figure.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
