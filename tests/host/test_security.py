# Secrets never show: a duty cycle that logs in to a broker requiring a password, and
# the simulated board run with a secrets.json, have everything they print, publish and
# report (window lines, health and status messages, list_fd, netstat, errors) searched
# for the user name and password.
import asyncio
import getpass
import json
import os
import subprocess

import pytest

from cellmqtt import app, config, port, secrets, shell
from cellmqtt.ledger import Ledger
from tools.board_files import ROOT
from tools.services import EmulatorProcess, Mosquitto

USERNAME = "board-user-7Qx"
PASSWORD = "pw-Hj38-secret!"
_POLL_S = 0.02  # how often list_fd and netstat are read while a window runs


def _login_lines(folder):
    """mosquitto config lines: a password file that knows USERNAME/PASSWORD (run as
    us: as root mosquitto would become a user that cannot read the test's folder)."""
    path = os.path.join(folder, "passwords")
    open(path, "w").close()
    subprocess.run(["mosquitto_passwd", "-b", path, USERNAME, PASSWORD], check=True, timeout=30)
    return ["user " + getpass.getuser(), "password_file " + path]


def _leaks(texts):
    return [text for text in texts if USERNAME in text or PASSWORD in text]


@pytest.fixture
def locked_bench(monkeypatch, tmp_path):
    """A mosquitto that admits only USERNAME/PASSWORD, and the emulator."""
    monkeypatch.chdir(tmp_path)
    broker = Mosquitto(["allow_anonymous false"] + _login_lines(str(tmp_path))).start()
    emulator = EmulatorProcess("--power", "off", "--time-scale", "0").start()
    port.configure(modem=emulator.uart, control=emulator.control)
    try:
        yield broker
    finally:
        port.configure(modem=os.environ.get("CELLMQTT_MODEM"), control=os.environ.get("CELLMQTT_CONTROL"))
        emulator.stop()
        broker.stop()


def _config(broker):
    with open(ROOT + "/config.example.json") as f:
        raw = json.load(f)
    raw["broker"].update(host="127.0.0.1", port=broker.port)
    raw["device_id"] = "sec01"
    return config.validate(raw)


def _subscriber(broker, topic, count):
    return subprocess.Popen(["mosquitto_sub", "-p", str(broker.port), "-u", USERNAME, "-P", PASSWORD,
                             "-t", topic, "-q", "1", "-C", str(count), "-W", "20"],
                            stdout=subprocess.PIPE, text=True)


class WatchedLedger(Ledger):
    """A ledger that reads list_fd and netstat, as the REPL would, at every change: each
    state the table passes through while a window runs is seen (a sampling poll can miss
    a short-lived one on a busy machine)."""

    def __init__(self):
        super().__init__()
        self.reports = []

    def _report(self):
        self.reports.append(shell.list_fd_report(self))
        self.reports.append(shell.netstat_report())

    def acquire(self, kind, owner, detail=""):
        fd = super().acquire(kind, owner, detail)
        self._report()
        return fd

    def share(self, fd):
        super().share(fd)
        self._report()

    def release(self, fd):
        self._report()
        super().release(fd)


async def _window_watched(cycle, book):
    """Run one window; meanwhile read list_fd and netstat as the REPL would: every
    _POLL_S, and at every change of the ledger."""
    del book.reports[:]
    reports = []
    task = asyncio.create_task(cycle.window())
    while not task.done():
        reports.append(shell.list_fd_report(book))
        reports.append(shell.netstat_report())
        await asyncio.sleep(_POLL_S)
    outcome = await task
    return outcome, reports + book.reports


def test_a_window_logs_in_and_shows_no_secret(locked_bench):
    broker = locked_bench
    cfg = _config(broker)
    book = WatchedLedger()
    lines = []
    creds = secrets.validate({"username": USERNAME, "password": PASSWORD})
    cycle = app.DutyCycle(cfg, book=book, log=lines.append, secrets=creds)
    cycle.sample()
    first, reports = asyncio.run(_window_watched(cycle, book))
    assert first.ok, first.error  # the broker admits nobody else: the login was sent
    assert len(reports) > 2 and any("MQTT" in text for text in reports)

    health = _subscriber(broker, cfg["topics"]["health"], 1)
    status = _subscriber(broker, cfg["topics"]["status"], 1)
    port.sleep_ms(300)
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-u", USERNAME, "-P", PASSWORD, "-q", "1",
                    "-t", cfg["topics"]["command"], "-m", '{"cmd": "dump", "what": "password"}'],
                   check=True, timeout=10)
    cycle.sample()
    second, more = asyncio.run(_window_watched(cycle, book))
    assert second.ok and second.commands == 1, second.error
    published = [health.communicate(timeout=30)[0], status.communicate(timeout=30)[0]]
    assert json.loads(published[1])["ok"] is False  # refused, nothing changed

    texts = reports + more + published + lines + [first.line(cycle), second.line(cycle),
                                                  repr(cycle.secrets), repr(cycle.tls),
                                                  shell.list_fd_report(book), shell.netstat_report()]
    assert _leaks(texts) == []
    assert len(book) == 0


def test_a_wrong_password_fails_without_showing_it(locked_bench):
    broker = locked_bench
    wrong = PASSWORD + "-old"
    cycle = app.DutyCycle(_config(broker), book=Ledger(), log=lambda line: None,
                          secrets=secrets.validate({"username": USERNAME, "password": wrong}))
    cycle.sample()
    outcome = asyncio.run(cycle.window())
    # CONNACK 5 then the broker's close: the refusal is what the window reports
    assert not outcome.ok and outcome.error.startswith("MqttRefused"), outcome.error
    assert wrong not in outcome.error and USERNAME not in outcome.error
    assert wrong not in outcome.line(cycle)


def test_simulated_board_output_never_shows_secrets(tmp_path):
    """The real firmware on the simulated board, a secrets.json on its flash: the
    broker sees the login, the board's whole output does not contain it. The heap is
    larger than make sim's: from source, secrets.py's code alone takes ~6 KB of a heap
    that the plain duty cycle already fills (a board runs .mpy or frozen code)."""
    # anonymous stays allowed (the bench's own subscriber); a wrong login would be refused
    broker = Mosquitto(_login_lines(str(tmp_path))).start()
    try:
        secrets_path = tmp_path / "secrets.json"
        secrets_path.write_text(json.dumps({"username": USERNAME, "password": PASSWORD}))
        result = subprocess.run(
            [os.path.join(ROOT, ".venv", "bin", "python"), "-m", "tools.simboard", "--runtime", "micropython",
             "--cycles", "3", "--heap", "320K", "--broker", broker.address, "--secrets", str(secrets_path),
             "--json", str(tmp_path / "figures.json")],
            cwd=ROOT, capture_output=True, text=True, timeout=240)
        with open(os.path.join(broker.folder, "log")) as f:
            broker_log = f.read()
    finally:
        broker.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("window ") >= 3
    assert "u'%s'" % USERNAME in broker_log  # the board did log in with it
    assert _leaks([output]) == [], output
