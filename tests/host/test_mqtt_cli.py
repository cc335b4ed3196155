# `python -m tools.mqtt pub|sub` as people use it: child processes against a real
# mosquitto, over a socket and through the SIM7600 emulator, with the exit status and
# the one line on stderr that each failure gives.
import asyncio
import glob
import json
import queue
import signal
import socket
import subprocess
import sys
import threading

import pytest

from cellmqtt import port
from cellmqtt.ledger import Ledger
from cellmqtt.modem import AtChannel, Sim7600
from tests.host.brokers import BrokerFiles, mosquitto_dynsec_file, mosquitto_password_file
from tools.board_files import ROOT
from tools.mqtt import cli
from tools.services import EchoServer, EmulatorProcess, Mosquitto

RUN_TIMEOUT_S = 20  # one CLI run against loopback services takes well under a second
DYNSEC = (glob.glob("/usr/lib/*/mosquitto_dynamic_security.so") or ["mosquitto_dynamic_security.so"])[0]


@pytest.fixture(scope="module")
def broker():
    files = BrokerFiles()
    server = Mosquitto(["plugin " + DYNSEC, "plugin_opt_config_file " + mosquitto_dynsec_file(files, "secret/#")])
    try:
        yield server.start()
    finally:
        server.stop()
        files.remove()


def options(server):
    return ["-h", "127.0.0.1", "-p", str(server.port)]


def mqtt(*arguments, stdin=None):
    """One run of the CLI: (exit status, stdout bytes, stderr text)."""
    done = subprocess.run([sys.executable, "-m", "tools.mqtt", *arguments], cwd=ROOT, input=stdin,
                          capture_output=True, timeout=RUN_TIMEOUT_S)
    return done.returncode, done.stdout, done.stderr.decode()


class Sub:
    """A `sub -d` in the background; its stderr is read as it comes, so a test can wait
    until it has subscribed."""

    def __init__(self, *arguments):
        self.process = subprocess.Popen([sys.executable, "-m", "tools.mqtt", "sub", "-d", *arguments],
                                        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.stderr = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.put(line.decode().rstrip("\n"))
        self.lines.put(None)

    def wait_subscribed(self, count=1):
        seen = 0
        while seen < count:
            line = self.lines.get(timeout=RUN_TIMEOUT_S)
            assert line is not None, "sub ended before subscribing: %s" % self.stderr
            self.stderr.append(line)
            seen += line.startswith("mqtt sub: subscribed to ")
        return self

    def finish(self):
        """(exit status, stdout bytes, stderr lines) once it has ended by itself."""
        try:
            status = self.process.wait(RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
            self.stderr.append("(killed: it did not end)")
        out = self.process.stdout.read()
        self.process.stdout.close()
        self._reader.join(RUN_TIMEOUT_S)
        self.process.stderr.close()
        while True:
            line = self.lines.get_nowait()
            if line is None:
                break
            self.stderr.append(line)
        return status, out, self.stderr


def test_pub_and_sub_at_each_qos_from_argument_file_and_stdin(broker, tmp_path):
    sub = Sub(*options(broker), "-t", "cli/qos/#", "-t", "cli/qos/one", "-q", "2", "-C", "3", "-v")
    sub.wait_subscribed(2)
    assert mqtt("pub", *options(broker), "-t", "cli/qos/zero", "-m", "naught")[0] == 0
    binary = tmp_path / "payload.bin"
    binary.write_bytes(b"\x00\x01 two\xff")
    assert mqtt("pub", *options(broker), "-t", "cli/qos/one", "-f", str(binary), "-q", "1")[0] == 0
    status, out, err = mqtt("pub", *options(broker), "-t", "cli/qos/two", "-s", "-q", "2", "-d",
                            stdin=b"from stdin")
    assert status == 0 and out == b""
    assert "mqtt pub: published 10 bytes to cli/qos/two (QoS 2)" in err
    status, out, _ = sub.finish()
    # one line per message although cli/qos/one matches both filters
    assert status == 0
    assert out == b"cli/qos/zero naught\ncli/qos/one \x00\x01 two\xff\ncli/qos/two from stdin\n"


def test_retained_message_set_then_cleared_with_a_null_message(broker):
    assert mqtt("pub", *options(broker), "-t", "cli/retained", "-m", "on", "-r", "-q", "1")[0] == 0
    assert mqtt("sub", *options(broker), "-t", "cli/retained", "-C", "1")[:2] == (0, b"on\n")
    assert mqtt("pub", *options(broker), "-t", "cli/retained", "-n", "-r")[0] == 0
    status, out, err = mqtt("sub", *options(broker), "-t", "cli/retained", "-W", "0.3")
    assert (status, out) == (cli.EXIT_TIMEOUT, b"")
    assert err == "mqtt sub: timeout: -W 0.3 s passed with 0 messages received\n"


def test_persistent_session_gets_what_came_while_away_once(broker):
    session = [*options(broker), "-c", "-i", "cli-keeper", "-q", "1", "-t", "cli/keep"]
    first = Sub(*session, "-C", "1").wait_subscribed()
    assert mqtt("pub", *options(broker), "-t", "cli/keep", "-m", "first", "-q", "1")[0] == 0
    assert first.finish()[:2] == (0, b"first\n")
    assert mqtt("pub", *options(broker), "-t", "cli/keep", "-m", "while away", "-q", "1")[0] == 0
    status, out, err = mqtt("sub", *session, "-C", "1", "-d")
    assert (status, out) == (0, b"while away\n")
    assert "(session present: yes)" in err
    # its PUBACK went out before the disconnect: the broker does not send it again
    assert mqtt("sub", *session, "-W", "0.3")[:2] == (cli.EXIT_TIMEOUT, b"")


def test_will_published_on_a_kill_not_on_sigterm(broker):
    wills = Sub(*options(broker), "-t", "cli/will/#", "-v", "-C", "1", "-q", "1").wait_subscribed()
    will = ["--will-topic", "cli/will/%s", "--will-payload", "gone", "--will-qos", "1"]
    polite = Sub(*options(broker), "-t", "cli/nothing", *[w.replace("%s", "term") for w in will])
    polite.wait_subscribed()
    polite.process.send_signal(signal.SIGTERM)
    status, out, lines = polite.finish()
    assert (status, out) == (0, b"") and lines[-1] == "mqtt sub: disconnected"
    killed = Sub(*options(broker), "-t", "cli/nothing", *[w.replace("%s", "kill") for w in will])
    killed.wait_subscribed()
    killed.process.kill()
    killed.finish()
    assert wills.finish()[:2] == (0, b"cli/will/kill gone\n")


def test_refusal_by_a_real_broker_exits_3_with_its_reason():
    files = BrokerFiles()
    server = Mosquitto(["password_file " + mosquitto_password_file(files, "alice", "secret"),
                        "allow_anonymous false"]).start()
    try:
        good = mqtt("pub", *options(server), "-t", "cli/x", "-m", "1", "-u", "alice", "-P", "secret")
        bad = mqtt("pub", *options(server), "-t", "cli/x", "-m", "1", "-u", "alice", "-P", "wrong")
    finally:
        server.stop()
        files.remove()
    assert good == (0, b"", "")
    assert bad == (cli.EXIT_REFUSED, b"", "mqtt pub: connection refused by broker: not authorized (code 5)\n")


class ScriptedBroker:
    """Answers every CONNECT with CONNACK `code`, or with nothing when code is None."""

    def __init__(self, code):
        self.code = code
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # accept() wakes up to see stop(): a close alone does not
        self.port = self.listener.getsockname()[1]
        self.running = True
        self.connections = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                connection, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections.append(connection)
            connection.settimeout(RUN_TIMEOUT_S)
            try:
                if connection.recv(256) and self.code is not None:
                    connection.sendall(bytes([0x20, 2, 0, self.code]))
                connection.recv(256)  # until the client closes
            except OSError:
                pass

    def stop(self):
        self.running = False
        self.thread.join(RUN_TIMEOUT_S)
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.mark.parametrize("code, name", [(1, "unacceptable protocol version"), (2, "identifier rejected"),
                                        (3, "server unavailable"), (4, "bad user name or password")])
def test_each_refusal_code_is_named(code, name):
    server = ScriptedBroker(code)
    try:
        status, out, err = mqtt("pub", "-p", str(server.port), "-t", "x", "-m", "1")
    finally:
        server.stop()
    assert (status, out) == (cli.EXIT_REFUSED, b"")
    assert err == "mqtt pub: connection refused by broker: %s (code %d)\n" % (name, code)


def test_silent_broker_times_out_and_nothing_listening_is_a_link_failure():
    server = ScriptedBroker(None)
    try:
        status, _, err = mqtt("sub", "-p", str(server.port), "-t", "x", "--timeout", "0.3")
    finally:
        server.stop()
    assert (status, err) == (cli.EXIT_TIMEOUT, "mqtt sub: timeout: CONNACK: no answer within 300 ms\n")
    status, _, err = mqtt("pub", "-p", str(server.port), "-t", "x", "-m", "1")
    assert status == cli.EXIT_LINK
    assert err == "mqtt pub: cannot reach broker 127.0.0.1:%d: Connection refused\n" % server.port


def test_subscription_refused_exits_7(broker):
    status, _, err = mqtt("sub", *options(broker), "-t", "cli/fine", "-t", "secret/x", "-C", "1")
    assert (status, err) == (cli.EXIT_SUBSCRIBE,
                             "mqtt sub: subscription refused by broker: secret/x (SUBACK 0x80)\n")


@pytest.mark.parametrize("arguments, message", [
    (["pub", "-t", "a/+", "-m", "1"], "invalid request: -t 'a/+': wildcard in topic name"),
    (["pub", "-t", "a", "-m", "1", "-c"], "invalid request: -c needs a client id (-i): the broker keeps "
                                          "the session under it"),
    (["sub", "-t", "a/#/b"], "invalid request: -t 'a/#/b': '#' must be the whole last level"),
    (["pub", "-t", "a"], None),
])
def test_bad_usage_exits_2(arguments, message):
    status, out, err = mqtt(*arguments)
    assert (status, out) == (cli.EXIT_USAGE, b"")
    if message is not None:
        assert err == "mqtt %s: %s\n" % (arguments[0], message)
    else:
        assert "error: one of the arguments -m/--message -f/--file -s/--stdin-file -n/--null-message " \
               "is required" in err


def emulator_state(emulator):
    with socket.create_connection(emulator.control.rsplit(":", 1), timeout=RUN_TIMEOUT_S) as control:
        control.sendall(b"STATE\n")
        reply = b""
        while not reply.endswith(b"\n"):
            reply += control.recv(4096)
    return json.loads(reply)


@pytest.fixture
def emulator():
    started = []

    def start(*arguments):
        process = EmulatorProcess("--time-scale", "0", *arguments).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def test_pub_through_the_modem_into_mosquitto(broker, emulator):
    modem = emulator("--power", "on")
    sub = Sub(*options(broker), "-t", "cli/modem/up", "-q", "1", "-C", "1").wait_subscribed()
    status, out, err = mqtt("pub", *options(broker), "--modem", modem.uart, "-t", "cli/modem/up",
                            "-m", "from the modem", "-q", "1", "-d")
    assert (status, out) == (0, b""), err
    assert "mqtt pub: modem network closed (NETCLOSE)" in err
    assert sub.finish()[:2] == (0, b"from the modem\n")
    state = emulator_state(modem)
    assert state["links"] == [] and state["netopen"] is False and state["powered"] is True


def test_pub_and_sub_through_a_modem_with_every_field_behaviour(broker, emulator):
    # python -m tools.sim7600_emu --list-quirks; an unanswered AT+CPIN? costs its 5 s
    modem = emulator("--power", "on", "--quirk", "all")
    sub = Sub(*options(broker), "-t", "cli/modem/messy", "-q", "1", "-C", "1").wait_subscribed()
    status, out, err = mqtt("pub", *options(broker), "--modem", modem.uart, "-t", "cli/modem/messy",
                            "-m", "through the quirks", "-q", "1", "-d")
    assert (status, out) == (0, b""), err
    assert sub.finish()[:2] == (0, b"through the quirks\n")
    state = emulator_state(modem)
    assert state["links"] == [] and state["netopen"] is False and len(state["quirks"]) == 14
    assert modem.ask("POWER OFF") == "OK" and modem.ask("POWER ON") == "OK"  # the boot quirks again
    sub = Sub(*options(broker), "--modem", modem.uart, "-t", "cli/modem/messy/down", "-q", "1", "-C", "1")
    sub.wait_subscribed()
    assert mqtt("pub", *options(broker), "-t", "cli/modem/messy/down", "-m", "down", "-q", "1")[0] == 0
    status, out, lines = sub.finish()
    assert (status, out) == (0, b"down\n"), lines
    assert emulator_state(modem)["links"] == []


def test_sub_through_the_modem_from_mosquitto(broker, emulator):
    modem = emulator("--power", "on")
    sub = Sub(*options(broker), "--modem", modem.uart, "-t", "cli/modem/down", "-q", "2", "-C", "2", "-v")
    sub.wait_subscribed()
    for payload in ("one", "two"):
        assert mqtt("pub", *options(broker), "-t", "cli/modem/down", "-m", payload, "-q", "2")[0] == 0
    status, out, lines = sub.finish()
    assert (status, out) == (0, b"cli/modem/down one\ncli/modem/down two\n"), (out, lines)
    state = emulator_state(modem)
    assert state["links"] == [] and state["netopen"] is False


def test_modem_powered_on_through_the_pins_is_powered_off_again(broker, emulator):
    modem = emulator("--power", "off")
    sub = Sub(*options(broker), "-t", "cli/modem/pins", "-C", "1").wait_subscribed()
    status, _, err = mqtt("pub", *options(broker), "--modem", modem.uart, "--control", modem.control,
                          "-t", "cli/modem/pins", "-m", "woke up", "-d")
    assert status == 0, err
    assert "mqtt pub: modem powered on through PWRKEY" in err and "mqtt pub: modem powered off" in err
    assert sub.finish()[:2] == (0, b"woke up\n")
    state = emulator_state(modem)
    assert state["powered"] is False and state["links"] == [] and state["power_cycles"] == 1


def test_through_the_modem_failures_leave_no_link_open(emulator):
    no_sim = emulator("--power", "on", "--fault", "no_sim")
    status, _, err = mqtt("pub", "--modem", no_sim.uart, "-t", "x", "-m", "1")
    assert status == cli.EXIT_MODEM
    assert err.startswith("mqtt pub: modem failure: attach (SIM, registration, APN 'internet', NETOPEN): ")
    modem = emulator("--power", "on")
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    status, _, err = mqtt("pub", "-p", str(port), "--modem", modem.uart, "-t", "x", "-m", "1")
    assert status == cli.EXIT_LINK
    assert err.startswith("mqtt pub: cannot reach broker 127.0.0.1:%d through the modem: " % port)
    state = emulator_state(modem)
    assert state["links"] == [] and state["netopen"] is False
    server = ScriptedBroker(4)
    try:
        status, _, err = mqtt("pub", "-p", str(server.port), "--modem", modem.uart, "-t", "x", "-m", "1")
    finally:
        server.stop()
    assert (status, err) == (cli.EXIT_REFUSED, "mqtt pub: connection refused by broker: bad user name or "
                                               "password (code 4)\n")
    state = emulator_state(modem)
    assert state["links"] == [] and state["netopen"] is False


class HeldUart:
    """The modem's UART with a hold: once AT+CIPRXGET=2 has gone out, what the modem
    answers is kept back until the next AT+CIPSEND has gone out (or HOLD_S passed: a
    channel that waits for the late answer before it sends anything gets it then)."""

    HOLD_S = 0.3

    def __init__(self, stream):
        self._stream = stream
        self._open = asyncio.Event()
        self._open.set()
        self.held = False

    async def read(self, max_bytes):
        data = await self._stream.read(max_bytes)
        await self._open.wait()
        return data

    async def write(self, data):
        await self._stream.write(data)
        if bytes(data).startswith(b"AT+CIPRXGET=2"):
            self.held = True
            self._open.clear()
            asyncio.get_running_loop().call_later(self.HOLD_S, self._open.set)
        elif bytes(data).startswith(b"AT+CIPSEND") and self.held:
            self._open.set()

    async def close(self):
        self._open.set()
        await self._stream.close()


def test_a_link_read_cancelled_mid_command_leaves_the_next_send_working(emulator):
    # What MQTT teardown does to a modem link: its reader task is cancelled while its
    # AT+CIPRXGET=2 waits for the answer, then DISCONNECT is sent. The late OK of the
    # cancelled command must not be taken as the answer to the AT+CIPSEND that
    # follows, or its data never goes out after the prompt and the modem takes the
    # next command's first bytes as data instead.
    modem = emulator("--power", "on")
    echo = EchoServer().start()
    host, _, echo_port = echo.address.rpartition(":")

    async def body():
        uart = HeldUart(await port.open_tcp(modem.uart))
        driver = Sim7600(AtChannel(uart, ledger=Ledger()), ledger=Ledger(), owns_channel=True)
        driver.start()
        try:
            await driver.power_up()
            await driver.attach("internet")
            link = await driver.open_link(host, int(echo_port))
            await link.write(b"ping")
            reading = asyncio.ensure_future(link.read(100))
            while not uart.held:
                await asyncio.sleep(0.01)
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            await asyncio.wait_for(link.write(b"after"), 3)
            received = b""
            while not received.endswith(b"after"):
                received += await asyncio.wait_for(link.read(100), 3)
            assert received in (b"pingafter", b"after")  # the cancelled read may have lost "ping"
        finally:
            await uart.close()
            await driver.close()

    try:
        asyncio.run(body())
    finally:
        echo.stop()


def test_pub_through_a_serial_device(broker, emulator):
    # --modem /dev/...: the pyserial path a real modem's AT port takes (here a pty)
    modem = emulator("--power", "on", "--pty")
    assert modem.uart.startswith("/dev/")
    sub = Sub(*options(broker), "-t", "cli/modem/serial", "-C", "1").wait_subscribed()
    status, _, err = mqtt("pub", *options(broker), "--modem", modem.uart, "-t", "cli/modem/serial",
                          "-m", "over a tty", "-q", "1")
    assert status == 0, err
    assert sub.finish()[:2] == (0, b"over a tty\n")
    assert emulator_state(modem)["links"] == []
