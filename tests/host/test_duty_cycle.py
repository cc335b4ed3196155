# The duty cycle's own behaviour against the emulator and mosquitto: downlink commands
# queued by the broker while the modem slept, the health message, and a bad config.
import asyncio
import json
import os
import subprocess

import pytest

from cellmqtt import app, config, port
from cellmqtt.ledger import Ledger
from tools.board_files import ROOT
from tools.services import EmulatorProcess, Mosquitto


@pytest.fixture
def bench(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    broker = Mosquitto().start()
    emulator = EmulatorProcess("--power", "off", "--time-scale", "0").start()
    port.configure(modem=emulator.uart, control=emulator.control)
    try:
        yield broker, emulator
    finally:
        port.configure(modem=os.environ.get("CELLMQTT_MODEM"), control=os.environ.get("CELLMQTT_CONTROL"))
        emulator.stop()
        broker.stop()


def _config(broker):
    with open(ROOT + "/config.example.json") as f:
        raw = json.load(f)
    raw["broker"].update(host="127.0.0.1", port=broker.port)
    raw["device_id"] = "cycle01"
    return config.validate(raw)


class Listener:
    """mosquitto_sub on one topic, collecting payloads."""

    def __init__(self, broker, topic, count):
        self.process = subprocess.Popen(
            ["mosquitto_sub", "-p", str(broker.port), "-t", topic, "-q", "1", "-C", str(count),
             "-W", "20"], stdout=subprocess.PIPE, text=True)

    def messages(self):
        out, _ = self.process.communicate(timeout=30)
        return [json.loads(line) for line in out.splitlines()]


def _publish(broker, topic, payload):
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", topic, "-q", "1", "-m", payload],
                   check=True, timeout=10)


def test_commands_queued_while_asleep_are_answered_in_the_next_window(bench):
    broker, emulator = bench
    cfg = _config(broker)
    book = Ledger()
    cycle = app.DutyCycle(cfg, book=book, log=lambda line: None)
    cycle.sample()
    first = asyncio.run(cycle.window())  # makes the broker's persistent session
    assert first.ok, first.error

    replies = Listener(broker, cfg["topics"]["status"], 3)
    health = Listener(broker, cfg["topics"]["health"], 1)
    port.sleep_ms(300)  # both subscriptions in place before the window
    _publish(broker, cfg["topics"]["command"], '{"cmd": "set_period", "period_s": 120}')
    _publish(broker, cfg["topics"]["command"], '{"cmd": "reboot"}')
    _publish(broker, cfg["topics"]["command"], '{"cmd": "set_period", "period_s": 0}')
    cycle.sample()
    second = asyncio.run(cycle.window())
    assert second.ok and second.commands == 3, second.error

    answers = replies.messages()
    assert answers[0]["ok"] and answers[0]["period_s"] == 120
    assert not answers[1]["ok"] and "unknown cmd" in answers[1]["error"]
    assert not answers[2]["ok"] and "from 1 to 86400" in answers[2]["error"]
    assert cycle.period_s == 120
    with open(app.SETTINGS_FILE) as f:
        assert json.load(f) == {"period_s": 120}
    assert app.DutyCycle(cfg, book=Ledger()).period_s == 120  # kept across a reset

    report = health.messages()[0]
    assert report["device"] == "cycle01" and report["window"] == 2 and report["ledger"] >= 0
    assert report["queue"] == 0 and report["delivered"] == 1 and report["mem_used"] > 0
    assert 0 < report["mem_largest_free"] <= port.mem_total(), report
    assert book.at_baseline() and emulator.state()["links"] == []


def _publish_file(broker, topic, path, retain=False):
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", topic, "-q", "1", "-f", str(path)]
                   + (["-r"] if retain else []), check=True, timeout=10)


def _flood(broker, topic, payload, count):
    """count copies of one message, from one client (mosquitto_pub -l: a line each)."""
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", topic, "-q", "1", "-l"],
                   input=(payload + "\n") * count, text=True, check=True, timeout=30)


def _held_by_broker(broker, cfg):
    """Connect as the device (its persistent session) and count what the broker still holds."""
    from cellmqtt.mqtt import MqttClient

    held = []

    async def main():
        client = MqttClient(cfg["broker"]["client_id"], clean_session=False, keepalive_s=0,
                            on_message=lambda *args: held.append(args), ledger=Ledger())
        await client.connect(await port.open_tcp("127.0.0.1:%d" % broker.port))
        await asyncio.sleep(1)
        await client.disconnect()

    asyncio.run(main())
    return held


def test_an_oversized_command_and_a_flood_never_stop_the_uplink(bench, tmp_path):
    broker, emulator = bench
    cfg = _config(broker)
    cfg["downlink"]["max_per_window"] = 50
    command = cfg["topics"]["command"]
    big = tmp_path / "big"
    big.write_bytes(b'{"cmd": "status", "pad": "' + b"x" * 133300 + b'"}')
    _publish_file(broker, command, big, retain=True)  # reaches the first subscribe
    replies = Listener(broker, cfg["topics"]["status"], 204)
    port.sleep_ms(300)
    book = Ledger()
    cycle = app.DutyCycle(cfg, book=book, log=lambda line: None)
    cycle.sample()
    first = asyncio.run(cycle.window())
    assert first.ok and first.commands == 1, first.error

    _publish_file(broker, command, big)  # while the board sleeps
    _flood(broker, command, '{"cmd": "set_period", "period_s": 120}', 200)
    _publish(broker, command, '{"cmd": "set_period", "period_s": 300}')
    sent = 1 + 200 + 1 + 1  # the retained one answered already
    readings = 1
    for _ in range(5):
        for _ in range(3):
            cycle.sample()
            readings += 1
        outcome = asyncio.run(cycle.window())
        assert outcome.ok, outcome.error
        assert book.at_baseline() and emulator.state()["links"] == []
    assert cycle.store.depth == 0 and cycle.store.next_seq == readings + 1  # every reading delivered
    answers = replies.messages()
    assert len(answers) == sent and cycle.period_s == 300
    size = 1 + 3 + 2 + len(command) + 2 + len(big.read_bytes())  # the PUBLISH, header to payload
    too_large = "command of %d bytes is larger than the limit of 256 bytes" % size
    assert [answer["error"] for answer in answers[:2]] == [too_large] * 2, answers[:2]
    assert all(a["ok"] and a["period_s"] == 120 for a in answers[2:-1])
    assert answers[-1]["ok"] and answers[-1]["period_s"] == 300
    assert _held_by_broker(broker, cfg) == []  # every command answered, none held


def test_commands_not_answered_stay_at_the_broker(bench):
    broker, emulator = bench
    cfg = _config(broker)
    cfg["downlink"]["max_per_window"] = 5
    cycle = app.DutyCycle(cfg, book=Ledger(), log=lambda line: None)
    cycle.sample()
    assert asyncio.run(cycle.window()).ok
    _flood(broker, cfg["topics"]["command"], '{"cmd": "status"}', 30)
    cycle.sample()
    second = asyncio.run(cycle.window())
    assert second.ok and second.commands == 5, second.error
    assert cycle.inbox.deferred > 0
    assert len(_held_by_broker(broker, cfg)) == 25  # answered 5, the broker holds the rest


def test_a_bad_config_stops_with_its_key(tmp_path, capsys):
    raw = json.load(open(ROOT + "/config.example.json"))
    raw["broker"]["port"] = 70000
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    app.main(str(path))
    assert "configuration error: config broker.port" in capsys.readouterr().out


def test_deep_sleep_wakes_as_a_reset_and_the_queue_carries_on(bench, monkeypatch):
    broker, emulator = bench
    monkeypatch.setattr(port._pc, "TIME_SCALE", 0.001)  # 60 s periods pass in 60 ms
    raw = json.load(open(ROOT + "/config.example.json"))
    raw["broker"].update(host="127.0.0.1", port=broker.port)
    raw["device_id"] = "deep01"
    raw["sleep"]["mode"] = "deep"
    raw["upload"]["every_n_readings"] = 3
    cfg = config.validate(raw)
    lines = []
    for boot in range(7):  # each wake is a fresh program, as after machine.deepsleep
        cycle = app.DutyCycle(cfg, book=Ledger(), log=lines.append)
        try:
            asyncio.run(cycle.run())
        except SystemExit as wake:
            assert wake.code == port.RESET_EXIT_CODE
        else:
            raise AssertionError("deep sleep returned")
    assert [line.split()[2] for line in lines] == ["ok", "ok"], lines  # after wakes 3 and 6
    assert cycle.store.next_seq == 8 and cycle.store.depth == 1
    assert emulator.state()["links"] == [] and not emulator.state()["powered"]
