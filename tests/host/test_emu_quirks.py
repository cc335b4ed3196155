# Each of the emulator's quirks byte for byte on the UART, how they are set (CLI, control
# port, Python) and what RESET and CLEAR do to them.
import asyncio
import json
import random
import socket
import subprocess
import sys
import time

import pytest

from support import until
from tools.board_files import ROOT
from tools.sim7600_emu import quirks
from tools.sim7600_emu.model import Clock
from tools.sim7600_emu.modem import Modem
from tools.sim7600_emu.threaded import Control, ThreadedEmulator, Wire

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
BOOT = b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n"
SCALE = 0.2  # the timed emulator: a late ERROR 60 ms after its answer, a slow boot 4 s


@pytest.fixture(scope="module")
def emu():
    with ThreadedEmulator(power_on=True, time_scale=0) as emulator:
        yield emulator
        assert emulator.errors == []


@pytest.fixture(scope="module")
def timed():
    with ThreadedEmulator(power_on=True, time_scale=SCALE) as emulator:
        yield emulator
        assert emulator.errors == []


def _bench(emulator):
    control = Control(emulator.control_address)
    assert control.ask("RESET") == "OK"
    uart = Wire(emulator.uart_address)
    uart.send(b"ATE0\r")
    uart.expect(b"ATE0\r" + OK)
    return control, uart


@pytest.fixture
def bench(emu):
    control, uart = _bench(emu)
    yield control, uart
    uart.close()
    control.close()


@pytest.fixture
def timed_bench(timed):
    control, uart = _bench(timed)
    yield control, uart
    uart.close()
    control.close()


def quirk(control, *names):
    assert control.ask("QUIRK ON " + " ".join(names)) == "OK"


def cmd(uart, command, answer):
    uart.send(command + b"\r")
    uart.expect(answer)


def boot(control, uart):
    """Power off, then a PWRKEY press (any press toggles at time scale 0)."""
    assert control.ask("POWER OFF") == "OK"
    assert control.ask("SET 4 1") == "OK" and control.ask("SET 4 0") == "OK"


class Peer:
    """A loopback listener for the modem's links; accept() the next connection."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(2)
        self.port = self.listener.getsockname()[1]

    def accept(self):
        peer, _ = self.listener.accept()
        peer.settimeout(2)
        return peer

    def close(self):
        self.listener.close()


@pytest.fixture
def peer():
    listener = Peer()
    yield listener
    listener.close()


def open_link(uart, peer, number=0, netopen=OK + b"\r\n+NETOPEN: 0\r\n", answer=None):
    if netopen is not None:
        cmd(uart, b"AT+NETOPEN", netopen)
    cmd(uart, b'AT+CIPOPEN=%d,"TCP","127.0.0.1",%d' % (number, peer.port),
        answer or OK + b"\r\n+CIPOPEN: %d,0\r\n" % number)
    return peer.accept()


def test_no_space_in_urcs_and_payload_headers_not_in_answers(bench, peer):
    control, uart = bench
    quirk(control, "no_space")
    cmd(uart, b"AT+CSQ", b"\r\n+CSQ: 21,99\r\n" + OK)
    cmd(uart, b"AT+CIPRXGET=1", OK)
    remote = open_link(uart, peer, netopen=OK + b"\r\n+NETOPEN:0\r\n", answer=OK + b"\r\n+CIPOPEN:0,0\r\n")
    remote.sendall(b"\x20\x02\x00\x00")
    uart.expect(b"\r\n+CIPRXGET:1,0\r\n")
    cmd(uart, b"AT+CIPRXGET=2,0,1500", b"\r\n+CIPRXGET:2,0,4,0\r\n\x20\x02\x00\x00" + OK)
    remote.close()
    uart.expect(b"\r\n+IPCLOSE:0,1\r\n")
    boot(control, uart)
    uart.expect(b"\r\nRDY\r\n\r\n+CPIN:READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n")


def test_trailing_space_after_finals(bench):
    control, uart = bench
    quirk(control, "trailing_space")
    cmd(uart, b"AT+CSQ", b"\r\n+CSQ: 21,99\r\n\r\nOK \r\n")
    cmd(uart, b"AT+BOGUS", b"\r\nERROR \r\n")
    assert control.ask("FAULT no_sim") == "OK"
    cmd(uart, b"AT+CPIN?", b"\r\n+CME ERROR: 10 \r\n")


def test_late_ip_error_after_netopen_and_a_late_trailing_error(timed_bench):
    control, uart = timed_bench
    quirk(control, "late_ip_error")
    uart.send(b"AT+IPADDR\r")
    uart.expect(b"\r\n+IP ERROR: Network not opened\r\n")
    assert uart.drain(quiet_s=0.02) == b""  # the ERROR is late ...
    uart.expect(ERROR, timeout_s=1)  # ... but comes
    uart.send(b"AT+NETOPEN\r")
    uart.expect(OK + b"\r\n+IP ERROR: Network not opened\r\n")
    uart.expect(ERROR, timeout_s=1)
    uart.expect(b"\r\n+NETOPEN: 0\r\n", timeout_s=1)  # the late answer was before it


def test_two_errors_after_ciperror_the_second_late(timed_bench):
    control, uart = timed_bench
    quirk(control, "two_errors")
    cmd(uart, b"AT+NETOPEN", OK)
    uart.expect(b"\r\n+NETOPEN: 0\r\n", timeout_s=1)
    uart.send(b"AT+CIPSEND=3,5\r")
    uart.expect(b"\r\n+CIPERROR: 4\r\n" + ERROR)
    assert uart.drain(quiet_s=0.02) == b""
    uart.expect(ERROR, timeout_s=1)
    assert uart.drain(quiet_s=0.05) == b""


def test_sim_failure_then_sim_busy_after_each_boot(bench):
    control, uart = bench
    quirk(control, "sim_failure_at_boot")
    boot(control, uart)
    uart.expect(BOOT.replace(b"\r\n+CPIN: READY\r\n", b""))  # the SIM is not ready yet
    uart.send(b"ATE0\r")
    uart.expect(b"ATE0\r" + OK)
    cmd(uart, b"AT+CPIN?", b"\r\n+CME ERROR: 13\r\n")
    cmd(uart, b"AT+CMEE=2", OK)
    cmd(uart, b"AT+CPIN?", b"\r\n+CME ERROR: SIM busy\r\n\r\n+CPIN: READY\r\n")  # now it is
    cmd(uart, b"AT+CPIN?", b"\r\n+CPIN: READY\r\n" + OK)
    cmd(uart, b"AT+CPIN?", b"\r\n+CPIN: READY\r\n" + OK)


def test_slow_boot_status_at_16_s_and_the_uart_at_20_s(timed_bench):
    control, uart = timed_bench
    quirk(control, "slow_boot")
    assert control.ask("POWER OFF") == "OK"
    press = time.monotonic()
    assert control.ask("SET 4 1") == "OK"
    time.sleep(0.2 * SCALE)  # 200 model ms: a power-on press
    assert control.ask("SET 4 0") == "OK"
    status_ms = ready_ms = None
    while time.monotonic() - press < 25 * SCALE:  # wall time only bounds the wait
        if status_ms is None and control.ask("GET 34") == "1":
            status_ms = json.loads(control.ask("STATE"))["powered_ms"]
        uart.send(b"AT\r")
        if uart.drain(quiet_s=0.01):
            ready_ms = json.loads(control.ask("STATE"))["powered_ms"]
            break
    # on the model's clock, read as each was seen: STATUS not before 16 s, the UART not before 20 s
    assert status_ms is not None and status_ms >= 16000 - 1, status_ms
    assert ready_ms is not None and ready_ms >= 20000 - 1 and ready_ms >= status_ms, (status_ms, ready_ms)


def test_boot_urcs_twice_and_late_when_the_first_link_opens(bench, peer):
    control, uart = bench
    quirk(control, "boot_urcs_again")
    boot(control, uart)
    uart.expect(BOOT + BOOT)
    uart.send(b"ATE0\r")
    uart.expect(b"ATE0\r" + OK)
    remote = open_link(uart, peer, answer=OK + b"\r\n+CIPOPEN: 0,0\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n"
                                          b"\r\n+CPIN: READY\r\n")
    open_link(uart, peer, number=1, netopen=None).close()  # once a boot
    remote.close()


def test_urc_before_the_echo_and_before_the_answer(bench):
    control, uart = bench
    quirk(control, "urc_before_answer")
    cmd(uart, b"AT+CSQ", b"\r\nPB DONE\r\n\r\n+CSQ: 21,99\r\n" + OK)  # echo off
    cmd(uart, b"ATE1", b"\r\nPB DONE\r\n" + OK)
    cmd(uart, b"AT", b"\r\nSMS DONE\r\nAT\r\r\nPB DONE\r\n" + OK)


def test_a_line_of_commands_meets_the_quirks_once(bench):
    # one echo, one URC before it and one before the answers, one final: a line is one command
    control, uart = bench
    quirk(control, "urc_before_answer", "trailing_space")
    cmd(uart, b"ATE1+CSQ;+CEREG?", b"\r\nPB DONE\r\n\r\n+CSQ: 21,99\r\n\r\n+CEREG: 0,1\r\n\r\nOK \r\n")
    cmd(uart, b"AT+CSQ;+BOGUS;+CEREG?",
        b"\r\nSMS DONE\r\nAT+CSQ;+BOGUS;+CEREG?\r\r\nPB DONE\r\n\r\n+CSQ: 21,99\r\n\r\nERROR \r\n")


def test_cpin_unanswered_once_after_each_boot(bench):
    control, uart = bench
    quirk(control, "cpin_silent_once")
    boot(control, uart)
    uart.expect(BOOT)
    uart.send(b"AT+CPIN?\r")
    assert uart.drain() == b""
    cmd(uart, b"AT+CPIN?", b"AT+CPIN?\r\r\n+CPIN: READY\r\n" + OK)


def test_registration_reads_unknown_before_the_real_stat(bench):
    control, uart = bench
    quirk(control, "reg_unknown_first")
    assert control.ask("POWER OFF") == "OK" and control.ask("POWER ON") == "OK"
    uart.drain()
    cmd(uart, b"AT+CEREG?", b"AT+CEREG?\r\r\n+CEREG: 0,4\r\n" + OK)
    cmd(uart, b"AT+CGREG?", b"AT+CGREG?\r\r\n+CGREG: 0,11\r\n" + OK)
    cmd(uart, b"AT+CREG?", b"AT+CREG?\r\r\n+CREG: 0,11\r\n" + OK)
    cmd(uart, b"AT+CEREG?", b"AT+CEREG?\r\r\n+CEREG: 0,1\r\n" + OK)


def test_network_closed_with_the_last_link(bench, peer, emu):
    control, uart = bench
    quirk(control, "network_closed")
    first = open_link(uart, peer)
    second = open_link(uart, peer, number=1, netopen=None)
    cmd(uart, b"AT+CIPCLOSE=0", OK + b"\r\n+CIPCLOSE: 0,0\r\n")
    second.close()  # the remote closes the last one
    uart.expect(b"\r\n+IPCLOSE: 1,1\r\n\r\n+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY\r\n")
    assert not emu.state()["netopen"]
    cmd(uart, b"AT+NETCLOSE", b"\r\n+NETCLOSE: 2\r\n" + ERROR)
    first.close()


def test_cipopen_urc_before_its_ok(bench, peer):
    control, uart = bench
    quirk(control, "cipopen_urc_first")
    remote = open_link(uart, peer, answer=b"\r\n+CIPOPEN: 0,0\r\n" + OK)
    cmd(uart, b'AT+CIPOPEN=1,"TCP","192.0.2.1",1883', b"\r\n+CIPOPEN: 1,1\r\n" + OK)
    remote.close()


def test_blank_lines_around_answers_and_urcs_not_inside_a_payload(bench, peer):
    control, uart = bench
    quirk(control, "blank_lines")
    cmd(uart, b"AT+CSQ", b"\r\n\r\n+CSQ: 21,99\r\n\r\n\r\n\r\nOK\r\n\r\n")
    cmd(uart, b"AT+CIPRXGET=1", b"\r\n\r\nOK\r\n\r\n")
    remote = open_link(uart, peer, netopen=b"\r\n\r\nOK\r\n\r\n\r\n\r\n+NETOPEN: 0\r\n\r\n",
                       answer=b"\r\n\r\nOK\r\n\r\n\r\n\r\n+CIPOPEN: 0,0\r\n\r\n")
    remote.sendall(b"\r\nOK\r\n")
    uart.expect(b"\r\n\r\n+CIPRXGET: 1,0\r\n\r\n")
    cmd(uart, b"AT+CIPRXGET=2,0,1500", b"\r\n\r\n+CIPRXGET: 2,0,6,0\r\n\r\nOK\r\n\r\n\r\nOK\r\n\r\n")
    remote.close()


def test_pieces_keep_every_byte_in_order_on_the_uart(bench):
    control, uart = bench
    quirk(control, "pieces")
    expected = b"\r\n" + b"\r\n".join(b"+CIPOPEN: %d" % n for n in range(10)) + b"\r\n" + OK
    uart.send(b"AT+CIPOPEN?\r")
    chunks = []
    got = 0
    uart.sock.settimeout(2)
    while got < len(expected):
        chunk = uart.sock.recv(4096)
        chunks.append(chunk)
        got += len(chunk)
    assert b"".join(chunks) == expected
    cmd(uart, b"AT", OK)  # in order, and nothing else


def test_pieces_are_writes_of_their_own_in_order():
    # On the modem's sink, not a socket: a loaded host's reader may find pieces run together.
    modem = Modem(Clock(0), quirks=["pieces"], rng=random.Random(1))
    pieces = []
    modem.attach(pieces.append)
    first, second = b"\r\n+CIPOPEN: 0,0\r\n" * 6, b"\r\nOK\r\n"

    async def send():
        modem.write_raw(first)
        modem.write_raw(second)
        await until(lambda: sum(map(len, pieces)) == len(first + second))

    asyncio.run(send())
    assert b"".join(pieces) == first + second
    assert all(1 <= len(piece) <= 7 for piece in pieces), pieces


def test_quirks_on_and_off_on_the_control_port_and_reset_and_clear(bench, emu):
    control, uart = bench
    assert control.ask("QUIRK") == "none"
    assert control.ask("QUIRK ON all") == "OK"
    assert control.ask("QUIRK") == " ".join(sorted(quirks.QUIRKS))
    assert control.ask("QUIRK OFF pieces blank_lines") == "OK"
    assert "pieces" not in control.ask("QUIRK") and emu.state()["quirks"] == sorted(
        set(quirks.QUIRKS) - {"pieces", "blank_lines"})
    assert control.ask("CLEAR") == "OK" and control.ask("QUIRK") != "none"
    assert control.ask("QUIRK ON bogus").startswith("ERR unknown quirk 'bogus'")
    assert control.ask("QUIRK ON").startswith("ERR unknown request")
    assert control.ask("RESET") == "OK" and control.ask("QUIRK") == "none"
    emu.set_quirks(["trailing_space"])
    assert emu.state()["quirks"] == ["trailing_space"]


def test_start_up_quirks_survive_reset():
    with ThreadedEmulator(power_on=True, time_scale=0, quirks=["trailing_space"]) as emulator:
        control = Control(emulator.control_address)
        assert control.ask("QUIRK OFF all") == "OK" and control.ask("RESET") == "OK"
        assert control.ask("QUIRK") == "trailing_space"
        uart = Wire(emulator.uart_address)
        cmd(uart, b"AT", b"AT\r\r\nOK \r\n")
        uart.close()
        control.close()


def test_cli_lists_the_quirks_and_takes_them():
    listed = subprocess.run([sys.executable, "-m", "tools.sim7600_emu", "--list-quirks"], cwd=ROOT,
                            capture_output=True, text=True, timeout=10, check=True).stdout.splitlines()
    assert [line.split()[0] for line in listed] == list(quirks.QUIRKS)
    assert all(len(line.split()) > 3 for line in listed)
    refused = subprocess.run([sys.executable, "-m", "tools.sim7600_emu", "--quirk", "bogus"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10, check=False)
    assert refused.returncode == 2 and "unknown quirk 'bogus'" in refused.stderr
    process = subprocess.Popen([sys.executable, "-m", "tools.sim7600_emu", "--listen", "127.0.0.1:0",
                                "--control", "127.0.0.1:0", "--time-scale", "0", "--quirk", "all",
                                "--quirk", "pieces"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()
        control = Control(process.stdout.readline().split()[1])
        assert json.loads(control.ask("STATE"))["quirks"] == sorted(quirks.QUIRKS)
        control.close()
    finally:
        process.terminate()
        assert process.wait(5) == 0
        process.stdout.close()
