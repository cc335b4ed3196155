"""Loopback services for tests and tools: the SIM7600 emulator, a mosquitto broker and
a TCP echo server, each started on free ports and stopped by PID.

  python -m tools.services -- COMMAND ...

runs COMMAND with the three running and their addresses in the environment:
CELLMQTT_MODEM and CELLMQTT_CONTROL (the emulator's UART and control port),
CELLMQTT_BROKER (mosquitto) and CELLMQTT_ECHO (echo server), all "127.0.0.1:port".
A second mosquitto serves TLS with a test PKI (tools/certs.py) in the folder
CELLMQTT_TLS_PKI (ca.crt, other_ca.crt, client.crt, client.key ...): its listeners
CELLMQTT_TLS_BROKER (good certificate), CELLMQTT_TLS_EXPIRED, CELLMQTT_TLS_WRONG_HOST
and CELLMQTT_TLS_MUTUAL (a client certificate required); a line "RESTART" to
CELLMQTT_TLS_CONTROL restarts it (same ports) and is answered "OK".
It exits with COMMAND's status and leaves nothing running.
"""

import getpass
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from tools.board_files import ROOT
from tools.certs import make_pki

LOOPBACK = "127.0.0.1"
_START_TIMEOUT_S = 15
_MIN_PORT = 10000  # free_port's lowest: above the well-known and most registered services
_STOP_TIMEOUT_S = 5
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def serve_each(listener, handle):
    """Hand each connection the listener accepts to handle(connection), in a daemon thread
    of its own, until the listener is closed."""

    def accept():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def free_port():
    """A loopback port nobody listens on, for a server to bind a moment later. Taken
    below the kernel's ephemeral range, so no outgoing connection of the tests can take
    it in the meantime (a port from bind(0) can be: a broker then fails to start)."""
    low = _ephemeral_low()
    if low > _MIN_PORT + 1000:
        for _ in range(200):
            port = random.randint(_MIN_PORT, low - 1)
            with socket.socket() as probe:
                try:
                    probe.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def wait_for_port(port, timeout_s=_START_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((LOOPBACK, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %s:%d after %d s" % (LOOPBACK, port, timeout_s))


def stop_process(process, stop_signal=signal.SIGTERM, timeout_s=_STOP_TIMEOUT_S):
    """Ask a server to end (stop_signal), then SIGKILL it if it has not within timeout_s."""
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def child_pids(pid):
    """The processes that process pid started and that still run (Linux /proc: the
    children of each of its threads)."""
    found = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                found += [int(child) for child in f.read().split()]
        except OSError:  # a thread that ended meanwhile
            pass
    return found


class _Broker:
    """A broker process of our own on a free loopback port, with a folder for its
    config and log; subclasses write the config and name the command."""

    def __init__(self, name, port):
        self.folder = tempfile.mkdtemp(prefix=name + "-")
        self.port = port or free_port()
        self.address = "%s:%d" % (LOOPBACK, self.port)
        self.process = None

    def command(self):
        raise NotImplementedError

    def start(self):
        with open(os.path.join(self.folder, "log"), "a") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port)
        except RuntimeError as error:
            with open(os.path.join(self.folder, "log")) as log:
                said = log.read()[-600:]
            self.stop()
            raise RuntimeError("%s; its log ends: %s" % (error, said)) from None
        return self

    def kill(self):
        """Stop the broker but keep its folder, so start() brings the same one back."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def restart(self):
        self.kill()
        return self.start()

    def stop(self):
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class Mosquitto(_Broker):
    """A mosquitto of our own on a free loopback port; `extra` lines go into its config."""

    def __init__(self, extra=(), port=None):
        super().__init__("mosquitto", port)
        self.config_path = os.path.join(self.folder, "mosquitto.conf")
        with open(self.config_path, "w") as config:
            config.write("listener %d %s\nallow_anonymous true\npersistence false\n"
                         % (self.port, LOOPBACK))
            for line in extra:
                config.write(line + "\n")

    def command(self):
        return [MOSQUITTO, "-c", self.config_path]


def tls_listener(port, pki, name="server", require_certificate=False):
    """mosquitto config lines: a TLS listener on loopback serving the `name` certificate
    of a make_pki() folder, clients verified against its CA."""
    lines = ["listener %d %s" % (port, LOOPBACK), "cafile " + pki["ca"],
             "certfile " + pki[name + "_cert"], "keyfile " + pki[name + "_key"]]
    if require_certificate:
        lines.append("require_certificate true")
    return lines


class TlsMosquitto(Mosquitto):
    """A mosquitto with its plain listener (.address) and four TLS listeners, in .tls by
    name: "good", "expired", "wrong_host" and "mutual" (requires a client certificate)."""

    def __init__(self, pki):
        ports = {name: free_port() for name in ("good", "expired", "wrong_host", "mutual")}
        # as root mosquitto would drop to its own user, which cannot read our 0600 keys
        extra = ["user " + getpass.getuser()]
        extra += tls_listener(ports["good"], pki)
        extra += tls_listener(ports["expired"], pki, "expired")
        extra += tls_listener(ports["wrong_host"], pki, "wrong_host")
        extra += tls_listener(ports["mutual"], pki, require_certificate=True)
        super().__init__(extra)
        self.tls = {name: "%s:%d" % (LOOPBACK, number) for name, number in ports.items()}

    def start(self):
        super().start()
        for address in self.tls.values():
            wait_for_port(int(address.rpartition(":")[2]))
        return self


class LineControl:
    """A loopback line server for test processes that cannot manage services (the
    MicroPython lane): each line names an action in `actions`, answered "OK" or "ERR ..."."""

    def __init__(self, actions):
        self._actions = actions
        self._listener = socket.create_server((LOOPBACK, 0))
        self.address = "%s:%d" % (LOOPBACK, self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _serve(self):
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection, connection.makefile("rwb") as lines:
                for line in lines:
                    action = self._actions.get(line.strip().decode(errors="replace"))
                    try:
                        if action is None:
                            raise ValueError("unknown action")
                        action()
                        lines.write(b"OK\n")
                    except Exception as error:  # the answer carries it to the test
                        lines.write(("ERR %s\n" % error).encode())
                    lines.flush()

    def stop(self):
        self._listener.close()


class Amqtt(_Broker):
    """The embedded default broker: amqtt (PyPI) on a free loopback port. `plugins`
    ({plugin class path: {option: value}}) replaces the default anonymous access."""

    def __init__(self, port=None, plugins=None):
        super().__init__("amqtt", port)
        self.config_path = os.path.join(self.folder, "amqtt.yaml")
        if plugins is None:
            plugins = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        with open(self.config_path, "w") as config:  # JSON is YAML too
            json.dump({"listeners": {"default": {"type": "tcp", "bind": self.address}},
                       "plugins": plugins}, config)

    def command(self):
        return [os.path.join(os.path.dirname(sys.executable), "amqtt"), "-c", self.config_path]


class EmulatorProcess:
    """The SIM7600 emulator CLI in a child process; its log (stderr) goes to the file
    `log` names, else to ours."""

    def __init__(self, *arguments, log=None):
        self.arguments = ("--listen", LOOPBACK + ":0", "--control", LOOPBACK + ":0") + arguments
        self.log = log
        self.process = None
        self.uart = self.control = None

    def start(self):
        log = None if self.log is None else open(self.log, "a")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tools.sim7600_emu"] + list(self.arguments),
                cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        finally:
            if log is not None:
                log.close()  # the child has its own copy
        deadline = time.monotonic() + _START_TIMEOUT_S
        while (self.uart is None or self.control is None) and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            word, _, address = line.strip().partition(" ")
            if word == "UART" or word == "PTY":  # with --pty, uart is the terminal's path
                self.uart = address
            elif word == "CONTROL":
                self.control = address
        if self.uart is None or self.control is None:
            self.stop()
            raise RuntimeError("the SIM7600 emulator did not report its addresses")
        return self

    def ask(self, line):
        """One request on the control port; its one-line answer."""
        host, _, port = self.control.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as control:
            control.sendall(line.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = control.recv(4096)
                if not chunk:
                    raise RuntimeError("the emulator closed its control port")
                reply += chunk
        return reply.decode().strip()

    def state(self):
        return json.loads(self.ask("STATE"))

    def stop(self):
        if self.process is not None:
            stop_process(self.process)
            self.process.stdout.close()
            self.process = None


class EchoServer:
    """A threaded loopback echo server: every connection gets its bytes back."""

    def __init__(self):
        self._listener = socket.create_server((LOOPBACK, 0))
        self.address = "%s:%d" % (LOOPBACK, self._listener.getsockname()[1])
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _serve(self):
        while self._running:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(connection,), daemon=True).start()

    @staticmethod
    def _echo(connection):
        with connection:
            while True:
                try:
                    data = connection.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                connection.sendall(data)

    def stop(self):
        self._running = False
        self._listener.close()


class Services:
    """The set `python -m tools.services` runs (the emulator powered on at time scale 0,
    mosquitto, the echo server, the TLS mosquitto and its control), in a with block:
    .env holds their CELLMQTT_* addresses; leaving the block stops each by PID and
    removes their folders. One set serves one test process at a time (the emulator is
    one stateful modem): a pytest-xdist worker starts a set of its own (tests/conftest.py)."""

    def __init__(self):
        self.env = {}
        self._started = []
        self._folder = None

    def start(self):
        self._folder = tempfile.mkdtemp(prefix="services-")
        try:
            # its warnings (the TLS tests' refused handshakes) in the set's folder, not amid test output
            emulator = self._add(EmulatorProcess("--power", "on", "--time-scale", "0",
                                                 log=os.path.join(self._folder, "emulator.log")))
            broker = self._add(Mosquitto())
            echo = self._add(EchoServer())
            pki = make_pki(os.path.join(self._folder, "pki"))
            tls_broker = self._add(TlsMosquitto(pki))
            tls_control = self._add(LineControl({"RESTART": tls_broker.restart}))
        except BaseException:
            self.stop()
            raise
        self.env = dict(CELLMQTT_MODEM=emulator.uart, CELLMQTT_CONTROL=emulator.control,
                        CELLMQTT_BROKER=broker.address, CELLMQTT_ECHO=echo.address,
                        CELLMQTT_TLS_PKI=os.path.dirname(pki["ca"]),
                        CELLMQTT_TLS_BROKER=tls_broker.tls["good"],
                        CELLMQTT_TLS_EXPIRED=tls_broker.tls["expired"],
                        CELLMQTT_TLS_WRONG_HOST=tls_broker.tls["wrong_host"],
                        CELLMQTT_TLS_MUTUAL=tls_broker.tls["mutual"],
                        CELLMQTT_TLS_CONTROL=tls_control.address)
        return self

    def _add(self, service):
        service.start()
        self._started.append(service)
        return service

    def stop(self):
        while self._started:
            self._started.pop().stop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


USAGE = "usage: python -m tools.services -- COMMAND ..."


def main(argv):
    options = argv[:argv.index("--")] if "--" in argv else argv
    if "-h" in options or "--help" in options:
        print(USAGE + "\n\n" + __doc__.strip())
        return 0
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(USAGE, file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    with Services() as services:
        return subprocess.call(command, env=dict(os.environ, **services.env))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
