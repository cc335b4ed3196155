# Each of the emulator's faults, injected through the Python API, the control port's
# FAULT line and the CLI's spec syntax, and what the host sees on the UART.
import random
import socket

import pytest

from tools.sim7600_emu.faults import parse_spec, parse_words
from tools.sim7600_emu.threaded import Control, ThreadedEmulator, Wire

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
CSQ = b"\r\n+CSQ: 21,99\r\n\r\nOK\r\n"


@pytest.fixture(scope="module")
def emu():
    with ThreadedEmulator(power_on=True, time_scale=0) as emulator:
        yield emulator
        assert emulator.errors == []


@pytest.fixture
def control(emu):
    client = Control(emu.control_address)
    assert client.ask("RESET") == "OK"
    yield client
    client.close()


@pytest.fixture
def uart(emu, control):
    wire = Wire(emu.uart_address)
    wire.send(b"ATE0\r")
    wire.expect(b"ATE0\r" + OK)
    yield wire
    wire.close()


@pytest.fixture
def link0(uart):
    """Network open and link 0 connected to a test-owned peer socket."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(2)
    uart.send(b"AT+NETOPEN\r")
    uart.expect(OK + b"\r\n+NETOPEN: 0\r\n")
    uart.send(b'AT+CIPOPEN=0,"TCP","127.0.0.1",%d\r' % listener.getsockname()[1])
    uart.expect(OK + b"\r\n+CIPOPEN: 0,0\r\n")
    peer, _ = listener.accept()
    peer.settimeout(2)
    yield peer
    peer.close()
    listener.close()


def cmd(wire, command, answer):
    wire.send(command + b"\r")
    wire.expect(answer)


def test_silent_swallows_matching_commands_count_times(uart, emu):
    emu.fault("silent", command="AT+CSQ", count=2)
    for _ in range(2):
        uart.send(b"AT+CSQ\r")
        assert uart.drain() == b""
    cmd(uart, b"AT", OK)  # other commands were never affected
    cmd(uart, b"AT+CSQ", CSQ)


def test_silent_without_a_command_swallows_everything_until_clear(uart, control):
    assert control.ask("FAULT silent") == "OK"
    uart.send(b"AT\rAT+CSQ\r")
    assert uart.drain() == b""
    assert control.ask("CLEAR") == "OK"
    cmd(uart, b"AT", OK)


def test_error_and_cme_answer_instead_of_the_command(uart, control, emu):
    assert control.ask("FAULT error command=AT+CPIN count=1") == "OK"
    cmd(uart, b"AT+CPIN?", ERROR)
    cmd(uart, b"AT+CPIN?", b"\r\n+CPIN: READY\r\n" + OK)
    emu.fault("cme", command="AT+CGATT", code=14)
    cmd(uart, b"AT+CGATT?", b"\r\n+CME ERROR: 14\r\n")
    cmd(uart, b"AT+CGATT?", b"\r\n+CME ERROR: 14\r\n")  # count 0: until CLEAR
    emu.clear_faults()
    cmd(uart, b"AT+CGATT?", b"\r\n+CGATT: 1\r\n" + OK)


def test_garbage_puts_random_bytes_on_the_line_and_the_modem_carries_on(uart, control):
    assert control.ask("FAULT garbage bytes=40 seed=5") == "OK"
    assert uart.read_exact(40) == random.Random(5).randbytes(40)
    cmd(uart, b"AT", OK)


def test_truncate_cuts_the_next_answer_mid_line(uart, emu):
    emu.fault("truncate")
    uart.send(b"AT+CSQ\r")
    assert uart.drain() == b"\r\n+CSQ:"
    cmd(uart, b"AT+CSQ", CSQ)


def test_remote_close_and_send_timeout_close_the_link_with_their_reason(uart, emu, link0):
    emu.fault("remote_close", link=0)
    uart.expect(b"\r\n+IPCLOSE: 0,1\r\n")
    assert link0.recv(10) == b""
    assert emu.state()["links"] == []
    with pytest.raises(ValueError):
        emu.fault("remote_close", link=0)  # nothing open to close
    listener = socket.create_server(("127.0.0.1", 0))
    cmd(uart, b'AT+CIPOPEN=1,"TCP","127.0.0.1",%d' % listener.getsockname()[1],
        OK + b"\r\n+CIPOPEN: 1,0\r\n")
    peer, _ = listener.accept()
    emu.fault("send_timeout", link=1)
    uart.expect(b"\r\n+IPCLOSE: 1,2\r\n")
    assert emu.state()["links"] == []
    peer.close()
    listener.close()


def test_network_lost_drops_every_link_without_ipclose(uart, emu, link0, control):
    emu.fault("network_lost")
    uart.expect(b"\r\n+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY\r\n")
    assert uart.drain() == b""
    cmd(uart, b"AT+CIPCLOSE?", b"\r\n+CIPCLOSE: 0,0,0,0,0,0,0,0,0,0\r\n" + OK)
    cmd(uart, b"AT+NETOPEN?", b"\r\n+NETOPEN: 0\r\n" + OK)
    state = emu.state()
    assert state["links"] == [] and state["netopen"] is False
    assert control.ask("FAULT network_lost") == "ERR network_lost: the network is not open"


def test_reg_denied_no_sim_and_no_signal_hold_until_clear(uart, control):
    assert control.ask("FAULT reg_denied") == "OK"
    cmd(uart, b"AT+CREG?", b"\r\n+CREG: 0,3\r\n" + OK)
    cmd(uart, b"AT+NETOPEN", OK + b"\r\n+NETOPEN: 1\r\n")  # no network to open
    assert control.ask("CLEAR") == "OK"
    assert control.ask("FAULT no_sim") == "OK"
    cmd(uart, b"AT+CPIN?", b"\r\n+CME ERROR: 10\r\n")
    cmd(uart, b"AT+CEREG?", b"\r\n+CEREG: 0,0\r\n" + OK)
    assert control.ask("CLEAR") == "OK"
    assert control.ask("FAULT no_signal") == "OK"
    cmd(uart, b"AT+CSQ", b"\r\n+CSQ: 99,99\r\n" + OK)
    cmd(uart, b"AT+CGREG?", b"\r\n+CGREG: 0,2\r\n" + OK)
    assert control.ask("CLEAR") == "OK"
    cmd(uart, b"AT+CSQ", CSQ)
    cmd(uart, b"AT+CREG?", b"\r\n+CREG: 0,1\r\n" + OK)


def test_short_send_confirms_half_once(uart, emu, link0):
    emu.fault("short_send")
    cmd(uart, b"AT+CIPSEND=0,10", b"\r\n>")
    uart.send(b"0123456789")
    uart.expect(OK + b"\r\n+CIPSEND: 0,10,5\r\n")
    assert link0.recv(100) == b"01234"
    cmd(uart, b"AT+CIPSEND=0,4", b"\r\n>")
    uart.send(b"abcd")
    uart.expect(OK + b"\r\n+CIPSEND: 0,4,4\r\n")
    assert link0.recv(100) == b"abcd"


def test_open_fail_answers_the_failure_and_error_once(uart, control, emu, link0):
    port = link0.getsockname()[1]
    assert control.ask("FAULT open_fail err=3") == "OK"
    cmd(uart, b'AT+CIPOPEN=1,"TCP","127.0.0.1",%d' % port, b"\r\n+CIPOPEN: 1,3\r\n" + ERROR)
    assert emu.state()["links"] == [0]


def test_brownout_now_loses_power_links_and_status(uart, control, link0, emu):
    assert control.ask("FAULT brownout") == "OK"
    uart.send(b"AT\r")
    assert uart.drain() == b""
    assert control.ask("GET 34") == "0"
    state = emu.state()
    assert state["powered"] is False and state["links"] == []
    with pytest.raises(ConnectionResetError):  # the bridged connection was reset
        link0.recv(10)


def test_brownout_on_a_command_cuts_power_after_its_echo(uart, control, emu, link0):
    cmd(uart, b"ATE1", OK)
    assert control.ask("FAULT brownout command=AT+CIPSEND") == "OK"
    cmd(uart, b"AT", b"AT\r" + OK)
    cmd(uart, b"AT+CIPSEND=0,5", b"AT+CIPSEND=0,5\r")
    assert uart.drain() == b""
    assert emu.state()["links"] == [] and control.ask("GET 34") == "0"


def test_fault_specs_parse_and_reject_mistakes(control):
    assert parse_spec("silent") == ("silent", {"command": "", "count": 0, "skip": 0})
    assert parse_spec('error:command=AT+CIPOPEN=0,"TCP",count=2') == (
        "error", {"command": 'AT+CIPOPEN=0,"TCP"', "count": 2, "skip": 0})
    assert parse_words(["cme", "code=13"]) == ("cme", {"command": "", "count": 0, "code": 13, "skip": 0})
    for bad in ["nope", "cme:code=x", "silent:bytes=3", "garbage:bytes=0", "remote_close"]:
        with pytest.raises(ValueError):
            parse_spec(bad)
    assert control.ask("FAULT nope").startswith("ERR unknown fault 'nope'")
    assert control.ask("FAULT cme colour=red").startswith("ERR fault cme takes")
    assert control.ask("FAULT remote_close link=0") == "ERR link 0 is not open"


def test_skip_lets_the_first_matching_commands_through():
    from tools.sim7600_emu.faults import Faults

    faults = Faults()
    faults.add("brownout", {"command": "AT+CIPSEND", "skip": 2})
    assert faults.match_command("AT+CIPSEND=0,5") is None
    assert faults.match_command("AT+CSQ") is None
    assert faults.match_command("AT+CIPSEND=0,9") is None
    assert faults.match_command("AT+CIPSEND=0,7")[0] == "brownout"
    assert faults.names() == []


def test_actions_given_a_command_strike_when_it_arrives(uart, control, emu, link0):
    assert control.ask("FAULT remote_close link=0 command=AT+CSQ skip=1") == "OK"
    cmd(uart, b"AT+CSQ", CSQ)  # skipped: the link stays
    assert emu.state()["links"] != []
    cmd(uart, b"AT+CSQ", b"\r\n+IPCLOSE: 0,1\r\n" + CSQ)  # closed first, then the answer
    assert link0.recv(10) == b"" and emu.state()["links"] == []
    emu.fault("network_lost", command="AT+CPIN")
    cmd(uart, b"AT+CPIN?", b"\r\n+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY\r\n\r\n+CPIN: READY\r\n" + OK)
    emu.fault("network_lost", command="AT+CPIN")  # nothing left to lose: the command is answered
    cmd(uart, b"AT+CPIN?", b"\r\n+CPIN: READY\r\n" + OK)
    emu.fault("garbage", bytes=8, seed=3, command="AT+CGATT")
    cmd(uart, b"AT+CGATT?", random.Random(3).randbytes(8) + b"\r\n+CGATT: 1\r\n" + OK)


def test_truncate_given_a_command_cuts_that_commands_answer(uart, emu):
    emu.fault("truncate", command="AT+CGATT")
    cmd(uart, b"AT+CSQ", CSQ)
    uart.send(b"AT+CGATT?\r")
    assert uart.drain() == b"\r\n+CGA"  # half of "+CGATT: 1"
    cmd(uart, b"AT+CSQ", CSQ)
