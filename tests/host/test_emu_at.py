# The SIM7600 emulator's command line, byte for byte (docs/modem.md): boot URCs,
# echo, general commands and their error forms, framing, and a fuzz that must not kill it.
import random

import pytest

from tools.services import EchoServer
from tools.sim7600_emu.threaded import Control, ThreadedEmulator, Wire


@pytest.fixture(scope="module")
def emu():
    with ThreadedEmulator(power_on=True, time_scale=0) as emulator:
        yield emulator


@pytest.fixture
def uart(emu):
    control = Control(emu.control_address)
    assert control.ask("RESET") == "OK"
    control.close()
    wire = Wire(emu.uart_address)
    yield wire
    wire.close()


def at(wire, command, answer):
    """command + CR in, its echo (the line and CR) and exactly `answer` out."""
    wire.send(command + b"\r")
    wire.expect(command + b"\r" + answer)


def quiet_at(wire, command, answer):
    """Echo off: exactly `answer` out."""
    wire.send(command + b"\r")
    wire.expect(answer)


def info(*lines):
    return b"\r\n" + b"\r\n".join(lines) + b"\r\n\r\nOK\r\n"


OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


def test_off_modem_is_silent_until_a_pwrkey_press_boots_it():
    with ThreadedEmulator(power_on=False, time_scale=0) as emulator:
        wire = Wire(emulator.uart_address)
        control = Control(emulator.control_address)
        assert control.ask("GET 34") == "0"
        wire.send(b"AT\r")
        assert wire.drain() == b""
        assert control.ask("SET 4 1") == "OK" and control.ask("SET 4 0") == "OK"
        wire.expect(b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n")
        assert control.ask("GET 34") == "1"
        at(wire, b"AT", OK)
        wire.close()
        control.close()


def test_echo_is_on_after_boot_and_ate0_turns_it_off(uart, emu):
    at(uart, b"AT", OK)
    assert emu.state()["echo"] is True
    at(uart, b"ATE0", OK)
    quiet_at(uart, b"AT", OK)
    assert emu.state()["echo"] is False
    quiet_at(uart, b"ATE1", OK)
    at(uart, b"AT", OK)


def test_cr_lf_lowercase_and_noise_before_at_are_tolerated(uart):
    uart.send(b"AT\r\n")
    uart.expect(b"AT\r" + OK)
    uart.send(b"\n\nat\r")
    uart.expect(b"at\r" + OK)
    uart.send(b"\x00\xffzzAT\r")  # noise before AT is dropped, the command runs
    uart.expect(b"AT\r" + OK)
    uart.send(b"hello\r")  # a line without AT is noise: no echo, no answer
    assert uart.drain() == b""


def test_general_commands_answer_as_the_reference_shows(uart):
    at(uart, b"ATE0", OK)
    for command, answer in [
        (b"AT+CPIN?", info(b"+CPIN: READY")),
        (b"AT+CSQ", info(b"+CSQ: 21,99")),
        (b"AT+CREG?", info(b"+CREG: 0,1")),
        (b"AT+CGREG?", info(b"+CGREG: 0,1")),
        (b"AT+CEREG?", info(b"+CEREG: 0,1")),
        (b'AT+CGDCONT=1,"IP","internet"', OK),
        (b"AT+CGDCONT?", info(b'+CGDCONT: 1,"IP","internet","0.0.0.0",0,0')),
        (b"AT+CGATT?", info(b"+CGATT: 1")),
        (b"AT+COPS?", info(b'+COPS: 0,0,"EMULATOR",7')),
        (b"AT+CMEE?", info(b"+CMEE: 1")),
        (b"AT+CMEE=2", OK),
        (b"AT+CMEE?", info(b"+CMEE: 2")),
        (b"AT+CIPCCFG=10,0,0,0,1,0,75000", OK),
        (b"AT+CIPCCFG?", info(b"+CIPCCFG: 10,0,0,0,1,0,75000")),
        (b"AT+CIPTIMEOUT=75000,15000,15000", OK),
        (b"AT+CIPTIMEOUT?", info(b"+CIPTIMEOUT: 75000,15000,15000")),
        (b"AT+CIPSRIP=0", OK),
        (b"AT+CIPHEAD=1", OK),
        (b"AT+CIPMODE=0", OK),
        (b"AT+CIPSENDMODE=0", OK),
        (b"AT+CIPRXGET?", info(b"+CIPRXGET: 0")),
        (b"AT+CIPRXGET=1", OK),
        (b"AT+CIPRXGET?", info(b"+CIPRXGET: 1")),
        (b"AT+CSCLK=0", OK),
        (b"AT+CSCLK?", info(b"+CSCLK: 0")),
        (b"AT+CFUN?", info(b"+CFUN: 1")),
        (b"AT+CSQ=?", OK),
        (b"AT+CGSN", info(b"862636050000007")),
        (b"AT+CIMI", info(b"460001234567890")),
        (b"ATI", info(b"Manufacturer: SIMCOM INCORPORATED", b"Model: SIMCOM_SIM7600G-H",
                      b"Revision: LE20B04SIM7600G22", b"IMEI: 862636050000007", b"+GCAP: +CGSM")),
    ]:
        quiet_at(uart, command, answer)


def test_unknown_and_malformed_commands_answer_a_bare_error(uart):
    at(uart, b"ATE0", OK)
    for command in [b"AT+FOO", b"ATX", b"AT+CREG=7", b'AT+CGDCONT=1,"IP', b"AT+CSQ?",
                    b"AT+CMEE=x", b"AT+CIPMODE=1", b"AT+CIPRXGET=3,0", b"AT+CSQ+CREG?"]:
        quiet_at(uart, command, ERROR)
    quiet_at(uart, b"AT", OK)


def test_cme_errors_take_the_form_cmee_asks_for(uart, emu):
    emu.fault("no_sim")
    at(uart, b"ATE0", OK)
    quiet_at(uart, b"AT+CPIN?", b"\r\n+CME ERROR: 10\r\n")
    quiet_at(uart, b"AT+CMEE=2", OK)
    quiet_at(uart, b"AT+CPIN?", b"\r\n+CME ERROR: SIM not inserted\r\n")
    quiet_at(uart, b"AT+CMEE=0", OK)
    quiet_at(uart, b"AT+CPIN?", ERROR)


def test_registration_urcs_follow_the_flight_pin(uart, emu):
    control = Control(emu.control_address)
    at(uart, b"ATE0", OK)
    quiet_at(uart, b"AT+CREG=1", OK)
    quiet_at(uart, b"AT+CREG?", info(b"+CREG: 1,1"))
    assert control.ask("SET 25 0") == "OK"
    uart.expect(b"\r\n+CREG: 0\r\n")
    quiet_at(uart, b"AT+CSQ", info(b"+CSQ: 99,99"))
    quiet_at(uart, b"AT+CGATT?", info(b"+CGATT: 0"))
    quiet_at(uart, b"AT+COPS?", info(b"+COPS: 0"))
    assert control.ask("SET 25 1") == "OK"  # searching, then registered
    uart.expect(b"\r\n+CREG: 2\r\n\r\n+CREG: 1\r\n")
    quiet_at(uart, b"AT+CFUN=0", OK + b"\r\n+CREG: 0\r\n")
    assert emu.state()["registered"] == 0
    control.close()


def test_a_line_of_commands_runs_them_in_turn_with_one_final_result(uart, emu):
    # V.250 concatenation: basic commands back to back, extended ones after a `;` (not a
    # quoted one); the whole line echoed (E0 in it turns echo off from the next line on);
    # each command's information lines as it runs, then one OK for the line
    at(uart, b'ATE0+CTZU=1;+CEREG=1;+CGDCONT=1,"IP","a;b";+CIPRXGET=1;+CEREG?', info(b"+CEREG: 1,1"))
    quiet_at(uart, b"AT+CTZU?;+CIPRXGET?;+CGDCONT?", b"\r\n+CTZU: 1\r\n\r\n+CIPRXGET: 1\r\n"
             + info(b'+CGDCONT: 1,"IP","a;b","0.0.0.0",0,0'))
    quiet_at(uart, b"ATE1V1;+CSQ", info(b"+CSQ: 21,99"))
    assert emu.state()["echo"] is True


def test_the_first_command_that_fails_ends_the_line_with_its_error(uart, emu):
    at(uart, b"ATE0", OK)
    quiet_at(uart, b"AT+CSQ;+CEREG=7;+CIPRXGET=1", b"\r\n+CSQ: 21,99\r\n" + ERROR)
    quiet_at(uart, b"AT+CIPRXGET?", info(b"+CIPRXGET: 0"))  # after the error nothing ran
    emu.fault("no_sim")
    quiet_at(uart, b"AT+CTZU=1;+CPIN?;+CIPRXGET=1", b"\r\n+CME ERROR: 10\r\n")
    quiet_at(uart, b"AT+CTZU?;+CIPRXGET?", b"\r\n+CTZU: 1\r\n" + info(b"+CIPRXGET: 0"))


def test_faults_meet_their_command_inside_a_line(uart, emu):
    at(uart, b"ATE0", OK)
    emu.fault("error", command="AT+CGDCONT", count=1)
    quiet_at(uart, b'AT+CEREG=1;+CGDCONT=1,"IP","iot";+CIPRXGET=1', ERROR)
    quiet_at(uart, b"AT+CEREG?;+CIPRXGET?", b"\r\n+CEREG: 1,1\r\n" + info(b"+CIPRXGET: 0"))
    emu.fault("silent", command="AT+CIPRXGET", count=1)
    uart.send(b"AT+CSQ;+CIPRXGET=1\r")
    uart.expect(b"\r\n+CSQ: 21,99\r\n")  # and no final result
    assert uart.drain() == b""


def test_an_overlong_line_is_an_error_and_the_next_line_works(uart):
    uart.send(b"AT+" + b"X" * 3000 + b"\r")
    uart.expect(ERROR)
    at(uart, b"AT", OK)


def test_the_commands_figure_counts_command_lines(uart, emu):
    for _ in range(5):
        at(uart, b"AT", OK)
    uart.send(b"noise\r")
    at(uart, b"AT+CSQ", info(b"+CSQ: 21,99"))
    at(uart, b"AT+CSQ;+CSQ", b"\r\n+CSQ: 21,99\r\n" + info(b"+CSQ: 21,99"))
    assert emu.state()["commands"] == 7


# Command heads that lead into deeper states (the CIPSEND payload, manual reads, push
# output); power-off, sleep and close commands are left out, since after them silence
# would be the right answer.
HEADS = [b"+CIPSEND=0,", b"+CIPRXGET=2,0,", b"+CIPRXGET=4,0", b"+CIPRXGET=", b"+CIPOPEN?",
         b"+CIPCLOSE?", b"+CREG=", b"+CREG?", b"+CMEE=", b"E", b"+CSQ", b"+CIPHEAD=",
         b"+CIPSRIP=", b"+NETOPEN", b"+CGDCONT=1,", b"+CIPCCFG=10,0,0,0,"]


def _fuzz_line(rng):
    if rng.random() < 0.4:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 40)))
    tail = [rng.choice([b"%d" % rng.randrange(0, 1600), b",", b'"', b"?", b"\n", b"\x00"])
            for _ in range(rng.randrange(0, 3))]
    head = rng.choice(HEADS)
    if head == b"+CIPSEND=0," and rng.random() < 0.8:
        tail = [b"%d" % rng.randrange(1, 200)]  # mostly valid: the payload follows
    line = b"AT" + head + b"".join(tail)
    return line + (b"\r" if rng.random() < 0.9 else b"")


def test_random_bytes_never_kill_it(uart, emu):
    rng = random.Random(7600)
    echo = EchoServer().start()
    port = echo.address.rpartition(":")[2].encode()
    uart.send(b"AT+NETOPEN\r")
    uart.read_until(b"+NETOPEN: 0\r\n")
    uart.send(b'AT+CIPOPEN=0,"TCP","127.0.0.1",' + port + b"\r")
    uart.read_until(b"+CIPOPEN: 0,0\r\n")
    for round_number in range(300):
        uart.send(b"".join(_fuzz_line(rng) for _ in range(rng.randrange(1, 8))))
        if round_number % 30 == 29:
            # Enough CRs to finish any CIPSEND payload, then a command with a unique answer.
            uart.send(b"\r" * 1500 + b"AT+CGMI\r")
            uart.read_until(b"SIMCOM INCORPORATED\r\n\r\nOK\r\n", timeout_s=5)
            uart.drain(0.01)
    assert emu.state()["powered"] is True
    assert emu.errors == []
    echo.stop()
