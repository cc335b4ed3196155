# The emulator's data calls byte for byte: ATD*99# and AT+CGDATA to CONNECT, data mode
# (nothing parsed as AT), the +++ escape only between guard times, ATO, ATH, NO CARRIER,
# DTR (AT&D0/1/2), power loss, and the faults no_carrier, carrier_drop, escape_ignored.
import json
import time

import pytest

from tools.sim7600_emu.model import DEFAULT_PINS
from tools.sim7600_emu.threaded import Control, ThreadedEmulator, Wire

SCALE = 0.02  # the 1 s guard time is 20 ms of wall time here
GUARD_S = 1.0 * SCALE
SILENCE_S = GUARD_S * 5  # comfortably more than a guard time
DTR = DEFAULT_PINS["DTR"]
OK = b"\r\nOK\r\n"
CONNECT = b"\r\nCONNECT 115200\r\n"
NO_CARRIER = b"\r\nNO CARRIER\r\n"
ERROR = b"\r\nERROR\r\n"


@pytest.fixture(scope="module")
def emu():
    with ThreadedEmulator(power_on=True, time_scale=SCALE) as emulator:
        yield emulator


@pytest.fixture
def bench(emu):
    control = Control(emu.control_address)
    assert control.ask("RESET") == "OK"
    wire = Wire(emu.uart_address)
    at(wire, b"ATE0", b"ATE0\r" + OK)
    yield wire, control
    wire.close()
    control.close()


def at(wire, command, answer):
    wire.send(command + b"\r")
    wire.expect(answer)


def state(control):
    return json.loads(control.ask("STATE"))


def connect(wire, control):
    at(wire, b'AT+CGDCONT=1,"IP","internet"', OK)
    at(wire, b"ATD*99#", CONNECT)
    assert state(control)["data_mode"] is True


def escape(wire):
    time.sleep(SILENCE_S)
    wire.send(b"+++")
    wire.expect(OK, timeout_s=2)


def test_dial_needs_registration_and_a_pdp_context(bench):
    wire, control = bench
    at(wire, b"ATD*99#", ERROR)  # the default context has no APN
    at(wire, b'AT+CGDCONT=1,"IP","internet"', OK)
    assert control.ask("SET %d 0" % DEFAULT_PINS["FLIGHT"]) == "OK"  # radio off: not registered
    at(wire, b"ATD*99#", NO_CARRIER)
    assert control.ask("SET %d 1" % DEFAULT_PINS["FLIGHT"]) == "OK"
    time.sleep(2.5 * SCALE + 0.05)  # registered again after the model's 2 s
    at(wire, b"ATD*99#", CONNECT)
    figures = state(control)
    assert figures["data_mode"] and figures["call"] == "data" and figures["ppp_sessions"] == 1


def test_cgdata_dials_too(bench):
    wire, control = bench
    at(wire, b'AT+CGDCONT=1,"IP","internet"', OK)
    at(wire, b'AT+CGDATA="PPP",2', ERROR)  # no context 2
    at(wire, b'AT+CGDATA="PPP",1', CONNECT)
    assert state(control)["data_mode"]


def test_data_mode_takes_every_byte_as_data(bench):
    wire, control = bench
    connect(wire, control)
    payload = b"AT\rATH\r~\x7d\x23+\r\nAT+CPOF\r" + bytes(range(256))
    wire.send(payload)
    assert wire.drain(SILENCE_S) == b""  # nothing answered: no AT parsed in data mode
    figures = state(control)
    assert figures["data_mode"] and figures["powered"]
    assert figures["data_rx_bytes"] == len(payload)


def test_escape_with_guard_times_then_ato_and_ath(bench):
    wire, control = bench
    connect(wire, control)
    wire.send(b"some PPP frames")
    escapes = state(control)["ppp_escapes"]
    escape(wire)
    figures = state(control)
    assert not figures["data_mode"] and figures["call"] == "command"
    assert figures["ppp_escapes"] == escapes + 1
    at(wire, b"AT", OK)  # online command mode: AT works, the call is up
    at(wire, b"ATO", CONNECT)
    assert state(control)["data_mode"]
    escape(wire)
    at(wire, b"ATH", OK)
    figures = state(control)
    assert figures["call"] == "none" and not figures["data_mode"]
    at(wire, b"ATO", NO_CARRIER)  # nothing to return to


@pytest.mark.parametrize("sent", [
    b"x+++",  # no silence before the pluses
    b"+++x",  # a byte right after them
    b"++++",  # four pluses
    b"+ ++",
])
def test_escape_without_its_guard_times_is_data(bench, sent):
    wire, control = bench
    connect(wire, control)
    time.sleep(SILENCE_S)
    escapes = state(control)["ppp_escapes"]
    wire.send(sent)
    assert wire.drain(SILENCE_S) == b""
    figures = state(control)
    assert figures["data_mode"] and figures["ppp_escapes"] == escapes
    escape(wire)  # a proper escape still works afterwards


def test_escape_cancelled_by_data_within_the_guard_after():
    with ThreadedEmulator(power_on=True, time_scale=0.5) as emulator:  # a 0.5 s guard
        wire, control = Wire(emulator.uart_address), Control(emulator.control_address)
        at(wire, b"ATE0", b"ATE0\r" + OK)
        connect(wire, control)
        time.sleep(0.7)
        wire.send(b"+++")
        time.sleep(0.1)
        wire.send(b"more data")
        assert wire.drain(0.8) == b""
        assert state(control)["data_mode"]
        wire.close()
        control.close()


def test_escape_ignored_fault(bench):
    wire, control = bench
    connect(wire, control)
    assert control.ask("FAULT escape_ignored") == "OK"
    time.sleep(SILENCE_S)
    wire.send(b"+++")
    assert wire.drain(SILENCE_S * 2) == b""
    assert state(control)["data_mode"]
    escape(wire)  # count=1: the next one is answered


def test_carrier_drop_now_and_armed(bench):
    wire, control = bench
    assert control.ask("FAULT carrier_drop").startswith("ERR")  # no call to drop
    connect(wire, control)
    assert control.ask("FAULT carrier_drop") == "OK"
    wire.expect(NO_CARRIER)
    assert state(control)["call"] == "none"
    at(wire, b"AT", OK)  # back in command mode
    assert control.ask("FAULT carrier_drop ms=100") == "OK"  # armed for the next CONNECT
    at(wire, b"ATD*99#", CONNECT)
    wire.expect(NO_CARRIER, timeout_s=2)
    assert state(control)["ppp_sessions"] == 2 and not state(control)["data_mode"]


def test_no_carrier_fault_answers_one_dial(bench):
    wire, control = bench
    at(wire, b'AT+CGDCONT=1,"IP","internet"', OK)
    assert control.ask("FAULT no_carrier") == "OK"
    at(wire, b"ATD*99#", NO_CARRIER)
    at(wire, b"ATD*99#", CONNECT)


@pytest.mark.parametrize("mode,answer,call", [
    (1, OK, "command"),  # back to commands, the call kept
    (2, OK, "none"),  # the call hung up
    (0, b"", "data"),  # DTR ignored
])
def test_dtr_off_in_data_mode(bench, mode, answer, call):
    wire, control = bench
    at(wire, b"AT&D%d" % mode, OK)
    connect(wire, control)
    assert control.ask("SET %d 1" % DTR) == "OK"
    assert wire.drain(SILENCE_S) == answer
    assert control.ask("SET %d 0" % DTR) == "OK"
    assert state(control)["call"] == call


def test_power_loss_in_data_mode(bench):
    wire, control = bench
    connect(wire, control)
    assert control.ask("POWER OFF") == "OK"
    figures = state(control)
    assert not figures["powered"] and not figures["data_mode"] and figures["call"] == "none"
    assert control.ask("POWER ON") == "OK"
    wire.drain(SILENCE_S)  # the boot URCs
    at(wire, b"AT", b"AT\r\r\nOK\r\n")  # commands again, echo back on after the boot
