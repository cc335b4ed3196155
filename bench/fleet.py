"""The fleet figures (issue 19): a simulated fleet against mosquitto with one collector
into SQLite (every reading stored, no gap, the planted leak found and no other board
flagged, the wall time), the same run with the collector SIGKILLed and restarted, and
the collector's sustained rate draining a backlog into SQLite, into PostgreSQL and
with two collectors on a shared subscription.

  python -m bench --only fleet          (part of make bench)
  python -m bench.fleet [--boards N] [--windows W]   alone, a smaller fleet
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

from tools.board_files import LIB

sys.path.insert(0, LIB)

from bench import report as r  # noqa: E402
from tools.fleet import report  # noqa: E402
from tools.fleet.__main__ import SIM_MEMWATCH, parse_memwatch  # noqa: E402
from tools.fleet.db import open_db  # noqa: E402
from tools.fleet.postgres import Postgres  # noqa: E402
from tools.fleet.process import MOSQUITTO_LINES, CollectorProcess, readings, run_sim, wait_for  # noqa: E402
from tools.services import Mosquitto  # noqa: E402

SETTLE_S = 120  # after the fleet's last window, for the collector to store what is left
WALL_TARGET_S = 600


class Plan:
    def __init__(self, boards=1000, windows=10):
        self.boards = boards
        self.windows = windows
        self.leaky = min(7, boards)
        self.leak_bytes = 512
        self.kills = 5
        self.backlog = 10000  # data messages of 10 readings for the drain runs


class _Killer(threading.Thread):
    """SIGKILLs the collector and starts it again each time the stored readings pass
    another 1/(kills+1) of the run's total."""

    def __init__(self, start, target, total, kills):
        threading.Thread.__init__(self, daemon=True)
        self.collector = start()
        self._start = start
        self._target = target
        self._marks = [total * (k + 1) // (kills + 1) for k in range(kills)]
        self.kills = 0
        self.done = threading.Event()

    def run(self):
        while self._marks and not self.done.is_set():
            if readings(self._target) >= self._marks[0]:
                self._marks.pop(0)
                self.collector.kill()
                self.kills += 1
                self.collector = self._start()
            time.sleep(0.2)


def _fleet_run(broker, plan, folder, kills, log):
    """One sim run into SQLite; the figures and the report's verdicts."""
    target = os.path.join(folder, "fleet-%d.db" % kills)
    summary = os.path.join(folder, "sim-%d.json" % kills)
    client_id = "bench-fleet-%d" % kills
    killer = _Killer(lambda: CollectorProcess(broker, target, "--client-id", client_id), target,
                     plan.boards * plan.windows * 10, kills)
    killer.start()
    started = time.monotonic()
    try:
        code = run_sim(broker, "--boards", str(plan.boards), "--windows", str(plan.windows), "--leaky-board",
                       str(plan.leaky), "--leak-bytes", str(plan.leak_bytes), "--memwatch", SIM_MEMWATCH,
                       "--json", summary)
        wall_s = time.monotonic() - started
        if code != 0:
            raise RuntimeError("fleet sim exited with %d" % code)
        with open(summary) as source:
            sim = json.load(source)
        complete = wait_for(target, sim["delivered"], SETTLE_S)
    finally:
        killer.done.set()
        killer.join(5)
        killer.collector.stop()
    db = open_db(target)
    try:
        found = report.analyse(db, settings=parse_memwatch(SIM_MEMWATCH))
    finally:
        db.close()
    fleet = found["fleet"]
    log("  fleet %d x %d, %d kills: %.0f s, %d of %d delivered readings stored, %d missing, flagged %s" % (
        plan.boards, plan.windows, killer.kills, wall_s, fleet["readings"], sim["delivered"], fleet["missing"],
        fleet["flagged"]))
    return {"wall_s": wall_s, "sim": sim, "fleet": fleet, "complete": complete, "kills": killer.kills,
            "rate": fleet["readings"] / _span_s(target)}


def _span_s(target):
    """From the first reading stored to the last, by the collector's clock."""
    db = open_db(target)
    try:
        first, last = db.query("SELECT MIN(received_at), MAX(received_at) FROM readings")[0]
    finally:
        db.close()
    return max(last - first, 1e-3)


def _drain(broker, targets, messages, share, log, label):
    """Readings per second stored by collectors draining a backlog their sessions kept."""
    options = ["--share", "bench"] if share else []
    ids = ["bench-drain-%s-%d" % (label, n) for n in range(len(targets))]
    for target, client_id in zip(targets, ids):  # the sessions and subscriptions, then away
        CollectorProcess(broker, target, "--client-id", client_id, *options).stop()
    _publish_backlog(broker, messages, label)
    before = readings(targets[0])
    total = before + messages * 10
    collectors = [CollectorProcess(broker, target, "--client-id", client_id, *options)
                  for target, client_id in zip(targets, ids)]
    try:
        # from the first commit to the last, as the database sees them
        wait_for(targets[0], before + 1, SETTLE_S)
        started, first = time.monotonic(), readings(targets[0])
        if not wait_for(targets[0], total, SETTLE_S):
            raise RuntimeError("%s: %d of %d readings stored" % (label, readings(targets[0]) - before,
                                                                  messages * 10))
        rate = (total - first) / (time.monotonic() - started)
    finally:
        taken = [collector.stop() for collector in collectors]
    log("  drain %s: %.0f readings/s (messages per collector %s)" % (label, rate, taken))
    return rate


def _publish_backlog(broker, messages, label):
    import asyncio

    from cellmqtt import port
    from cellmqtt.ledger import Ledger
    from cellmqtt.mqtt import MqttClient

    async def publish():
        client = MqttClient("bench-drain-pub", ledger=Ledger())
        await client.connect(await port.open_tcp(broker))
        try:
            for n in range(messages):
                device = "%s%03d" % (label, n % 100)
                first = (n // 100) * 10 + 1
                batch = [{"seq": seq, "temp_c10": 215} for seq in range(first, first + 10)]
                await client.publish("cellmqtt/%s/data" % device, json.dumps({"device": device, "readings": batch}),
                                     qos=1)
        finally:
            await client.disconnect()

    asyncio.run(publish())


def measure(results, plan, log=print):
    folder = tempfile.mkdtemp(prefix="bench-fleet-")
    broker = Mosquitto(MOSQUITTO_LINES).start()
    postgres = None
    try:
        postgres = Postgres().start()
        size = "%d boards x %d windows" % (plan.boards, plan.windows)
        run = _fleet_run(broker.address, plan, folder, 0, log)
        fleet, sim = run["fleet"], run["sim"]
        leaky = "sim%04d" % plan.leaky
        whole = run["complete"] and fleet["readings"] == sim["delivered"] and fleet["missing"] == 0
        results.add("fleet sim %s, one collector into SQLite: wall time" % size, r.OURS, round(run["wall_s"]),
                    "s", "< %d s" % WALL_TARGET_S, run["wall_s"] < WALL_TARGET_S,
                    "{:,} readings, {} windows failed".format(sim["delivered"], sim["failed_windows"]))
        results.add("fleet sim %s: readings stored of those the broker acknowledged" % size, r.OURS,
                    fleet["readings"], "", "all, 0 gaps, only %s flagged (planted leak)" % leaky,
                    whole and fleet["flagged"] == [leaky],
                    "of {:,}; {} missing; flagged: {}".format(sim["delivered"], fleet["missing"],
                                                             ", ".join(fleet["flagged"]) or "none"))
        results.add("fleet collector, SQLite, readings/s during the sim run (the fleet's pace)", r.OURS,
                    round(run["rate"]), "/s")
        killed = _fleet_run(broker.address, plan, folder, plan.kills, log)
        lost = killed["sim"]["delivered"] - killed["fleet"]["readings"]
        results.add("fleet collector SIGKILLed %d times during a run of %s: readings lost" % (plan.kills, size),
                    r.OURS, lost, "", "0", lost == 0 and killed["fleet"]["missing"] == 0
                    and killed["kills"] == plan.kills, "%d kills, %d missing" % (killed["kills"],
                                                                                 killed["fleet"]["missing"]))
        backlog = "backlog of {:,} readings".format(plan.backlog * 10)
        for label, targets, share in (
                ("sqlite", [os.path.join(folder, "drain.db")], False),
                ("postgres", [postgres.url], False),
                ("shared", [os.path.join(folder, "shared.db")] * 2, True)):
            rate = _drain(broker.address, targets, plan.backlog, share, log, label)
            name = {"sqlite": "into SQLite", "postgres": "into PostgreSQL",
                    "shared": "2 collectors on a shared subscription, SQLite"}[label]
            results.add("fleet collector sustained readings/s %s (%s)" % (name, backlog), r.OURS, round(rate), "/s")
    finally:
        if postgres is not None:
            postgres.stop()
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boards", type=int, default=1000)
    parser.add_argument("--windows", type=int, default=10)
    args = parser.parse_args(argv)
    results = r.Results()
    measure(results, Plan(args.boards, args.windows))
    print(results.markdown())
    return 0 if not results.missed() else 1


if __name__ == "__main__":
    sys.exit(main())
