# The fleet side (tools/fleet): the collector against mosquitto into SQLite and a
# PostgreSQL server of the test's own, killed and restarted; the shared subscription;
# the report's accounting and exit status; the watchdog replay against the board's own;
# and a small simulated fleet end to end. Servers on loopback, stopped by PID.
import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from cellmqtt import memwatch, port
from cellmqtt.ledger import Ledger
from cellmqtt.mqtt import MqttClient
from tools.board_files import ROOT
from tools.fleet import __main__ as cli
from tools.fleet import heap, messages, process, report, sim
from tools.fleet.db import open_db
from tools.fleet.postgres import Postgres
from tools.fleet.process import MOSQUITTO_LINES, CollectorProcess, readings
from tools.services import Mosquitto

WAIT_S = 20  # a collector that has not stored what it was sent by then never will


@pytest.fixture(scope="module")
def broker():
    server = Mosquitto(MOSQUITTO_LINES).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres():
    server = Postgres().start()  # PostgresMissing fails the tests that need it: make deps installs it
    try:
        yield server
    finally:
        server.stop()


async def _publish(broker, messages, pace_s):
    client = MqttClient("fleet-test-pub", ledger=Ledger())
    await client.connect(await port.open_tcp(broker.address))
    try:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)
            await asyncio.sleep(pace_s)
    finally:
        await client.disconnect()


def publish(broker, messages, pace_s=0):
    asyncio.run(_publish(broker, messages, pace_s))


def data(device, *seqs, value=0):
    readings = [{"seq": seq, "temp_c10": 200 + seq + value} for seq in seqs]
    return "cellmqtt/%s/data" % device, json.dumps({"device": device, "readings": readings})


def health(device, window, used):
    return "cellmqtt/%s/health" % device, json.dumps({
        "device": device, "window": window, "mem_used": used, "mem_peak": used + 9000,
        "mem_largest_free": 40000, "mem_status": "ok", "ledger": 0, "queue": 0, "dropped": 0,
        "modem_on_ms": 20000, "modem_total_on_ms": 20000 * (window - 1), "failures": 0, "delivered": 5})


def stored(db_target):
    db = open_db(db_target)
    try:
        return db.query("SELECT device, seq FROM readings ORDER BY device, seq")
    finally:
        db.close()


def wait_for(db_target, count):
    assert process.wait_for(db_target, count, WAIT_S), "stored %d of %d readings" % (readings(db_target), count)


@pytest.fixture
def start_collector(broker):
    """start_collector(db, *options): a collector on the module's broker; any still
    running at the end is killed."""
    started = []

    def start(db_target, *options):
        started.append(CollectorProcess(broker.address, db_target, *options))
        return started[-1]

    yield start
    for collector in started:
        if collector.process.poll() is None:
            collector.kill()


def analyse(db_target, **options):
    db = open_db(db_target)
    try:
        return report.analyse(db, **options)
    finally:
        db.close()


def test_duplicates_conflicts_gaps_rejects_and_the_reports_exit_status(broker, start_collector, tmp_path,
                                                                          capsys):
    target = str(tmp_path / "fleet.db")
    collecting = start_collector(target, "--client-id", "fleet-test-1", "--max-packet", "2048")
    publish(broker, [
        data("clean", 1, 2, 3), data("clean", 3, 4),  # seq 3 delivered twice, same content
        data("holes", 1, 2), data("holes", 6),  # 3-5 missing
        data("clash", 1, 2), data("clash", 2, value=1),  # seq 2 again, other content
        health("clean", 1, 0), health("clean", 2, 50000), health("clean", 2, 50000),
        ("cellmqtt/clean/status", '{"ok": true, "cmd": "status"}'),
        ("cellmqtt/bad/data", "not json"),
        ("cellmqtt/bad/data", '{"device": "bad", "readings": [{"no_seq": 1}]}'),
        ("cellmqtt/bad/data", '{"device": "other", "readings": [{"seq": 1}]}'),
        ("cellmqtt/bad/health", '{"device": "bad", "window": "one"}'),
        ("cellmqtt/bad/data", json.dumps({"device": "bad", "readings": [{"seq": 1, "x": "y" * 4000}]})),
        data("clean", 5),  # after all that, the collector still stores
    ])
    wait_for(target, 5 + 3 + 2)
    assert collecting.stop() == 16
    assert "10 readings stored, 1 duplicates, 1 conflicts, 5 rejects" in collecting.lines[-1]
    db = open_db(target)
    try:
        reasons = [row[0] for row in db.query("SELECT reason FROM rejects ORDER BY id")]
        assert db.query("SELECT device, seq, stored, received FROM conflicts") == [
            ("clash", 2, '{"seq":2,"temp_c10":202}', '{"seq":2,"temp_c10":203}')]
        assert db.query("SELECT COUNT(*) FROM health") == [(2,)]  # the redelivered one once
    finally:
        db.close()
    assert reasons[0] == "not JSON" and reasons[1].startswith("reading 0:"), reasons
    assert "in the payload" in reasons[2] and "'window'" in reasons[3] and reasons[4].startswith("oversized")

    found = {d["device"]: d for d in analyse(target, grace_s=3600)["devices"]}
    assert found["clean"]["readings"] == 5 and found["clean"]["duplicates"] == 1 and not found["clean"]["flags"]
    assert found["clean"]["memory"]["floor"] == 50000 and found["clean"]["energy"]["on_ms_per_window"] == 20000
    assert found["holes"]["gaps"][0]["from"] == 3 and found["holes"]["gaps"][0]["to"] == 5
    assert found["holes"]["missing"] == 3 and not found["holes"]["flags"]  # within the grace
    assert found["clash"]["conflicts"] == 1 and found["clash"]["flags"] == ["1 conflicting seq"]
    assert cli.main(["report", "--db", target, "--grace", "0"]) == cli.EXIT_FLAGGED
    out = capsys.readouterr().out
    assert "holes: missing seqs 3-5" in out and "holes: FLAGGED gap older than 0 s: 3-5" in out
    # only the clean device: exit 0, in JSON too
    with sqlite3.connect(target) as db:
        db.execute("DELETE FROM readings WHERE device <> 'clean'")
        db.execute("DELETE FROM conflicts")
    assert cli.main(["report", "--db", target, "--grace", "0", "--json", "--html", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["fleet"]["flagged"] == []
    assert "<svg" in (tmp_path / "index.html").read_text()


def _kill_and_restart(broker, start_collector, target, client_id):
    """Batches published while the collector is SIGKILLed three times and restarted;
    every reading is stored once."""
    batches = 150
    publisher = threading.Thread(target=publish, args=(broker, [
        data("kill%02d" % (n % 10), *range(5 * (n // 10) + 1, 5 * (n // 10) + 6)) for n in range(batches)], 0.01))
    collector = start_collector(target, "--client-id", client_id)
    publisher.start()
    try:
        for _ in range(3):
            time.sleep(0.2)  # the restarted one is storing what the broker kept
            collector.kill()
            collector = start_collector(target, "--client-id", client_id)
    finally:
        publisher.join(WAIT_S)
    wait_for(target, batches * 5)
    collector.stop()
    rows = stored(target)
    assert len(rows) == len(set(rows)) == batches * 5
    assert all(d["missing"] == 0 and not d["flags"] for d in analyse(target)["devices"])


def test_a_collector_killed_and_restarted_loses_nothing_sqlite(broker, start_collector, tmp_path):
    _kill_and_restart(broker, start_collector, str(tmp_path / "fleet.db"), "fleet-test-kill-sqlite")


def test_a_collector_killed_and_restarted_loses_nothing_postgres(broker, start_collector, postgres):
    _kill_and_restart(broker, start_collector, postgres.url, "fleet-test-kill-pg")


def test_a_shared_subscription_splits_the_messages_between_two_collectors(broker, start_collector, tmp_path):
    target = str(tmp_path / "fleet.db")
    collectors = [start_collector(target, "--share", "fleet", "--client-id", "fleet-share-%d" % n)
                  for n in (1, 2)]
    publish(broker, [data("share%d" % (n % 4), n // 4 + 1) for n in range(200)])
    wait_for(target, 200)
    counts = [collecting.stop() for collecting in collectors]
    assert sum(counts) == 200 and min(counts) > 0, counts
    assert len(set(stored(target))) == 200


def _board_figures(watch):
    verdict = watch.verdict
    return verdict.used, verdict.peak, verdict.largest


def test_the_replayed_verdict_is_the_boards_own_on_the_same_series():
    import random

    for leak in (0, 300):  # a clean board and a leaking one, on the simulated boards' heap model
        figures = sim.ModelHeap(random.Random(leak), leak, 192)
        board = heap.Watch({"window": 4, "warmup": 1}, figures)
        statuses, series = [], []
        for _ in range(12):
            statuses.append(board.sample().status)
            series.append(_board_figures(board))
        replayed = [v["status"] for v in heap.replay(series, {"window": 4, "warmup": 1})]
        assert replayed == statuses and (memwatch.LEAK in statuses) == bool(leak), statuses
    # and on this process's real heap (the CPython port), a real 64-byte leak per cycle
    board = memwatch.MemWatch({"window": 8, "warmup": 1, "leak_bytes": 128})
    hoard, statuses, series = [], [], []
    for _ in range(20):
        hoard.append(bytes(64))
        statuses.append(board.sample().status)
        series.append(_board_figures(board))
    replayed = [v["status"] for v in heap.replay(series, {"window": 8, "warmup": 1, "leak_bytes": 128})]
    assert replayed == statuses and memwatch.LEAK in statuses, statuses


def test_a_simulated_fleet_is_accounted_for_and_its_leak_found(broker, start_collector, tmp_path):
    target = str(tmp_path / "fleet.db")
    summary = tmp_path / "sim.json"
    collector = start_collector(target, "--client-id", "fleet-test-sim")
    code = subprocess.run(
        [sys.executable, "-m", "tools.fleet", "sim", "--boards", "6", "--windows", "7", "--broker",
         broker.address, "--leaky-board", "4", "--leak-bytes", "400", "--time-scale", "0.001",
         "--json", str(summary)], cwd=ROOT, timeout=120).returncode
    assert code == 0
    run = json.loads(summary.read_text())
    assert run["failed_windows"] == 0 and run["queued"] == 0
    wait_for(target, run["delivered"])
    collector.stop()
    found = analyse(target, settings={"window": 4, "warmup": 1})
    assert found["fleet"]["readings"] == run["delivered"] and found["fleet"]["missing"] == 0
    assert found["fleet"]["flagged"] == found["fleet"]["leaks"] == ["sim0004"]
    for device in found["devices"]:
        assert device["memory"]["board_verdict"] == device["memory"]["replay_verdict"], device["memory"]
        assert device["health_messages"] == 7 and device["energy"]["on_ms_per_window"] > 0


def test_a_reading_sent_again_once_dated_is_a_copy_and_keeps_its_ts(tmp_path):
    # taken before the board's clock was known and sent again after (app.py dates it then):
    # the stored row gets the ts; a ts that changes or goes is a conflict
    undated = {"seq": 1, "boot": 2, "rtc_s": 40, "battery_mv": 3900}
    dated = dict(undated, ts=1935000040)
    store = open_db(str(tmp_path / "fleet.db"))
    try:
        with store.transaction():
            for body, counts in [(undated, (1, 0, 0)), (dated, (0, 1, 0)), (dated, (0, 1, 0)),
                                 (dict(dated, ts=1935000041), (0, 0, 1)), (undated, (0, 0, 1))]:
                assert store.store_readings("d1", [(1, messages.canonical(body))], 1.0) == counts, body
        rows = store.query("SELECT body, copies FROM readings WHERE device = 'd1' AND seq = 1")
    finally:
        store.close()
    assert [(json.loads(body), copies) for body, copies in rows] == [(dated, 3)]
    assert not messages.dated_later(undated, dict(undated, ts=1, battery_mv=3901))  # more than a ts
