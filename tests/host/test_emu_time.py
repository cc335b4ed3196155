# The emulator's clock (issue 17 item 1): --clock sets UTC at the model clock's zero;
# AT+CCLK? answers it as local time with the zone in quarter hours, AT+CTZU (kept over
# power cycles) makes the registration bring +CTZV (universal time), AT+CNTP syncs.
import pytest

from cellmqtt.modem.sim7600 import utc_seconds
from tools.sim7600_emu.__main__ import _utc_ms
from tools.sim7600_emu.threaded import Control, ThreadedEmulator, Wire

MAY_2031 = 1935360000  # 2031-05-01T00:00:00Z


@pytest.fixture(scope="module")
def emu():
    with ThreadedEmulator(power_on=True, time_scale=0, clock=MAY_2031 * 1000.0) as emulator:
        yield emulator


@pytest.fixture
def wire(emu):
    control = Control(emu.control_address)
    assert control.ask("RESET") == "OK"
    control.close()
    uart = Wire(emu.uart_address)
    uart.send(b"ATE0\r")
    uart.expect(b"ATE0\r\r\nOK\r\n")
    yield uart
    uart.close()


def test_the_option_reads_iso_utc():
    assert _utc_ms("2031-05-01T00:00:00Z") == MAY_2031 * 1000.0


def test_cclk_is_the_clock_in_local_time_with_its_zone(wire):
    wire.send(b"AT+CCLK?\r")
    answer = wire.read_until(b"OK\r\n")
    assert answer.startswith(b'\r\n+CCLK: "31/05/01,02:00:')
    assert answer.endswith(b'+08"\r\n\r\nOK\r\n')
    assert 0 <= utc_seconds("AT+CCLK?", answer.split(b"\r\n")[1]) - MAY_2031 <= 2


def test_ctzu_is_kept_and_the_registration_brings_ctzv(emu, wire):
    for command, answer in ((b"AT+CTZU=?", b"\r\n+CTZU: (0-1)\r\n\r\nOK\r\n"),
                            (b"AT+CTZU?", b"\r\n+CTZU: 0\r\n\r\nOK\r\n"), (b"AT+CTZU=1", b"\r\nOK\r\n"),
                            (b"AT+CTZU=2", b"\r\nERROR\r\n")):
        wire.send(command + b"\r")
        wire.expect(answer)
    control = Control(emu.control_address)
    try:
        assert control.ask("POWER OFF") == "OK" and control.ask("POWER ON") == "OK"
    finally:
        control.close()
    assert b"RDY" in wire.read_until(b"+CTZV: ")
    line = b"+CTZV: " + wire.read_until(b"\r\n")[:-2]
    assert line.startswith(b'+CTZV: +08,"31/05/01,00:00:') and line.endswith(b'",0')
    assert 0 <= utc_seconds("+CTZV", line) - MAY_2031 <= 2
    wire.send(b"ATE0\r")
    wire.read_until(b"OK\r\n")
    wire.send(b"AT+CTZU?\r")
    wire.expect(b"\r\n+CTZU: 1\r\n\r\nOK\r\n")  # nonvolatile: a boot keeps it


def test_cntp_sets_its_server_and_syncs(wire):
    for command, answer in ((b"AT+CNTP", b"\r\nOK\r\n\r\n+CNTP: 4\r\n"),  # no server yet
                            (b'AT+CNTP="pool.ntp.org",0', b"\r\nOK\r\n"),
                            (b"AT+CNTP?", b'\r\n+CNTP: "pool.ntp.org",0\r\n\r\nOK\r\n'),
                            (b"AT+CNTP", b"\r\nOK\r\n\r\n+CNTP: 0\r\n")):
        wire.send(command + b"\r")
        wire.expect(answer)
