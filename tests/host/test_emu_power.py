# The emulator's power model and control port: PWRKEY presses measured on the model
# clock, STATUS, FLIGHT, DTR sleep and RI, optional supply and reset pins, RESET, the
# STATE figures, and the UART's one-connection-at-a-time rule.
import asyncio
import json
import time

import pytest

from tools.sim7600_emu import Emulator
from tools.sim7600_emu.model import LATENCY_MS
from tools.sim7600_emu.threaded import Control, ThreadedEmulator, Wire

OK = b"\r\nOK\r\n"
BOOT_URCS = b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n"


def cmd(wire, command, answer):
    wire.send(command + b"\r")
    wire.expect(answer)


def options(**given):
    return pytest.mark.parametrize("bench", [given], indirect=True)


@pytest.fixture
def bench(request):
    """An emulator (off, time scale 0, unless options() says otherwise), its UART and
    its control port."""
    options = dict(power_on=False, time_scale=0)
    options.update(getattr(request, "param", {}))
    with ThreadedEmulator(**options) as emulator:
        uart = Wire(emulator.uart_address)
        control = Control(emulator.control_address)
        yield emulator, uart, control
        uart.close()
        control.close()
        assert emulator.errors == []


def press(control, gpio=4, hold_s=0.0):
    assert control.ask("SET %d 1" % gpio) == "OK"
    if hold_s:
        time.sleep(hold_s)
    assert control.ask("SET %d 0" % gpio) == "OK"


def state(control):
    return json.loads(control.ask("STATE"))


def test_control_requests_and_their_errors(bench):
    emulator, uart, control = bench
    assert state(control) == {
        "powered": False, "status_pin": 0, "netopen": False, "links": [], "registered": 0,
        "uart_rx_bytes": 0, "uart_tx_bytes": 0, "commands": 0, "powered_ms": 0,
        "power_cycles": 0, "echo": True,
        "data_mode": False, "call": "none", "ppp_sessions": 0, "ppp_escapes": 0, "data_rx_bytes": 0,
        "tls_sessions": [], "tls_started": False, "tls_files": [], "quirks": []}
    assert control.ask("SET 32 1") == "OK" and control.ask("GET 32") == "1"
    assert control.ask("GET 13") == "0"  # an unwired GPIO reads its last level, 0
    assert 1971 <= int(control.ask("ADC 35")) <= 1979  # half the cell: the board's 100k/100k divider
    assert control.ask("ADC 36") == "0"
    assert control.ask("POWER ON") == "OK" and control.ask("GET 34") == "1"
    uart.expect(BOOT_URCS)
    assert control.ask("POWER OFF") == "OK" and control.ask("GET 34") == "0"
    for bad, reply in [("SET 34 1", "ERR GPIO 34 is the modem's STATUS, an input of the board"),
                       ("SET 4 2", "ERR a level is 0 or 1, not '2'"),
                       ("GET x", "ERR not a GPIO number: 'x'"),
                       ("POWER MAYBE", "ERR unknown request: POWER MAYBE"),
                       ("ATE1", "ERR unknown request: ATE1"),
                       ("", "ERR empty request")]:
        assert control.ask(bad) == reply
    other = Control(emulator.control_address)  # several clients at once
    assert other.ask("GET 34") == "0" and control.ask("GET 32") == "1"
    other.close()


def test_with_time_scale_zero_any_press_toggles_power(bench):
    emulator, uart, control = bench
    press(control)
    uart.expect(BOOT_URCS)
    cmd(uart, b"AT+CREG?", b"AT+CREG?\r\r\n+CREG: 0,1\r\n" + OK)
    press(control)
    uart.send(b"AT\r")
    assert uart.drain() == b""
    assert state(control)["powered"] is False and control.ask("GET 34") == "0"
    press(control)
    uart.expect(BOOT_URCS)
    assert state(control)["power_cycles"] == 2


@pytest.mark.parametrize("quirk", [(), ("slow_boot",)], ids=["boot", "slow_boot"])
def test_at_time_scale_0_the_modem_is_up_as_the_key_is_let_go(quirk):
    # no latency: STATUS is high for the board's first look after the press, not a loop turn later
    async def press_and_look():
        modem = Emulator(power_on=False, time_scale=0, quirks=quirk).modem
        modem.set_pin(4, 1)
        modem.set_pin(4, 0)
        return modem.status_pin()

    assert asyncio.run(press_and_look()) == 1


@options(time_scale=1.0)
def test_a_press_shorter_than_100_ms_does_not_start_it(bench):
    emulator, uart, control = bench
    press(control)
    assert state(control)["powered"] is False


@options(time_scale=0.05)
def test_press_lengths_and_latencies_follow_the_model_clock(bench):
    emulator, uart, control = bench
    press(control, hold_s=0.02)  # 400 ms of model time: boots
    assert state(control)["powered"] is True and control.ask("GET 34") == "0"
    uart.send(b"AT\r")  # still booting: ignored
    uart.expect(BOOT_URCS, timeout_s=3)
    # 12 s of model time from the press (the model's clock, whatever the machine's load;
    # an asyncio timer may fire a clock tick early, hence the 1 ms)
    assert state(control)["powered_ms"] >= LATENCY_MS["boot"] - 1
    assert control.ask("GET 34") == "1"
    cmd(uart, b"AT+CREG?", b"AT+CREG?\r\r\n+CREG: 0,2\r\n" + OK)  # registering: 2 s model
    time.sleep(0.15)
    cmd(uart, b"AT+CREG?", b"AT+CREG?\r\r\n+CREG: 0,1\r\n" + OK)
    press(control, hold_s=0.02)  # 400 ms: too short to power down
    cmd(uart, b"AT", b"AT\r" + OK)
    press(control, hold_s=0.15)  # 3 s: powers down, STATUS low 5 s (model) later
    uart.send(b"AT\r")
    assert uart.drain() == b""
    assert control.ask("GET 34") == "1"
    time.sleep(0.45)
    assert control.ask("GET 34") == "0" and state(control)["powered"] is False
    assert state(control)["powered_ms"] >= 12000


@options(time_scale=0.2)
def test_registration_reports_come_when_a_boot_registers(bench):
    emulator, uart, control = bench
    press(control, hold_s=0.05)
    uart.expect(BOOT_URCS, timeout_s=5)
    cmd(uart, b"AT+CEREG=1", b"AT+CEREG=1\r" + OK)
    cmd(uart, b"AT+CGREG=1", b"AT+CGREG=1\r" + OK)
    cmd(uart, b"AT+CEREG?", b"AT+CEREG?\r\r\n+CEREG: 1,2\r\n" + OK)  # registering: 2 s model
    uart.expect(b"\r\n+CGREG: 1\r\n\r\n+CEREG: 1\r\n", timeout_s=2)
    cmd(uart, b"AT+CEREG?", b"AT+CEREG?\r\r\n+CEREG: 1,1\r\n" + OK)


@options(time_scale=0.05, power_on=True)
def test_cpof_answers_ok_then_status_drops_after_the_shutdown_time(bench):
    emulator, uart, control = bench
    cmd(uart, b"AT+CPOF", b"AT+CPOF\r" + OK)
    assert control.ask("GET 34") == "1" and state(control)["powered"] is True
    uart.send(b"AT\r")
    assert uart.drain() == b""
    time.sleep(0.45)
    assert control.ask("GET 34") == "0" and state(control)["powered"] is False


@options(power_on=True)
def test_creset_reboots_with_its_urcs_and_the_defaults(bench):
    emulator, uart, control = bench
    cmd(uart, b"ATE0", b"ATE0\r" + OK)
    cmd(uart, b"AT+CRESET", OK + BOOT_URCS)
    cmd(uart, b"AT", b"AT\r" + OK)  # echo is back on
    assert state(control)["power_cycles"] == 1


@options(power_on=True, time_scale=1.0)
def test_dtr_sleep_ignores_the_uart_and_a_urc_pulses_ri(bench):
    emulator, uart, control = bench
    cmd(uart, b"ATE0", b"ATE0\r" + OK)
    cmd(uart, b"AT+CREG=1", OK)
    cmd(uart, b"AT+CSCLK=1", OK)
    assert control.ask("GET 33") == "1"
    assert control.ask("SET 32 1") == "OK"  # DTR high: asleep
    uart.send(b"AT\r")
    assert uart.drain() == b""
    assert control.ask("SET 25 0") == "OK"  # flight mode: +CREG: 0 wakes the host
    uart.expect(b"\r\n+CREG: 0\r\n")
    assert control.ask("GET 33") == "0"
    time.sleep(0.2)
    assert control.ask("GET 33") == "1"
    assert control.ask("SET 32 0") == "OK"
    cmd(uart, b"AT", OK)


@options(pins="POWER_EN=12,RESET=5")
def test_supply_and_reset_pins_when_the_board_has_them(bench):
    emulator, uart, control = bench
    press(control)
    assert state(control)["powered"] is False  # no supply yet
    assert control.ask("SET 12 1") == "OK"
    press(control)
    uart.expect(BOOT_URCS)
    assert control.ask("SET 5 1") == "OK"  # held in reset
    assert control.ask("GET 34") == "0"
    assert control.ask("SET 5 0") == "OK"  # released: boots again
    uart.expect(BOOT_URCS)
    assert control.ask("SET 12 0") == "OK"  # supply cut
    assert state(control)["powered"] is False


@options(power_on=True)
def test_state_accounts_uart_bytes_commands_and_power(bench):
    emulator, uart, control = bench
    sent = b"AT\rAT+CSQ\rAT+FOO\r"
    uart.send(sent)
    got = uart.read_until(b"AT+FOO\r\r\nERROR\r\n")
    figures = state(control)
    assert figures["uart_rx_bytes"] == len(sent)
    assert figures["uart_tx_bytes"] == len(got)
    assert figures["commands"] == 3 and figures["power_cycles"] == 1
    time.sleep(0.05)
    assert state(control)["powered_ms"] >= figures["powered_ms"] + 40
    assert control.ask("POWER OFF") == "OK" and control.ask("POWER ON") == "OK"
    assert state(control)["power_cycles"] == 2


@options(power_on=True)
def test_reset_brings_back_a_fresh_emulator(bench):
    emulator, uart, control = bench
    cmd(uart, b"ATE0", b"ATE0\r" + OK)
    cmd(uart, b"AT+NETOPEN", OK + b"\r\n+NETOPEN: 0\r\n")
    assert control.ask("FAULT no_signal") == "OK" and control.ask("SET 25 0") == "OK"
    uart.expect(b"\r\n+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY\r\n")
    assert control.ask("RESET") == "OK"
    figures = state(control)
    assert figures.pop("powered_ms") < 100  # counted from the reset
    assert figures == {
        "powered": True, "status_pin": 1, "netopen": False, "links": [], "registered": 1,
        "uart_rx_bytes": 0, "uart_tx_bytes": 0, "commands": 0, "power_cycles": 1, "echo": True,
        "data_mode": False, "call": "none", "ppp_sessions": 0, "ppp_escapes": 0, "data_rx_bytes": 0,
        "tls_sessions": [], "tls_started": False, "tls_files": [], "quirks": []}
    cmd(uart, b"AT+CSQ", b"AT+CSQ\r\r\n+CSQ: 21,99\r\n" + OK)  # the fault is gone, FLIGHT high


@options(power_on=True)
def test_a_dropped_uart_connection_changes_nothing_and_a_second_one_waits(bench):
    emulator, uart, control = bench
    cmd(uart, b"ATE0", b"ATE0\r" + OK)
    second = Wire(emulator.uart_address)
    second.send(b"AT+CSQ\r")
    assert second.drain(0.1) == b""  # waits, unread, while the first holds the line
    uart.close()
    second.expect(b"\r\n+CSQ: 21,99\r\n" + OK)  # echo still off: the modem did not notice
    second.close()


@options(time_scale=0.05)
def test_power_on_finishes_a_boot_or_a_shutdown_at_once(bench):
    emulator, uart, control = bench
    press(control, hold_s=0.02)  # booting: 600 ms of wall time to go
    assert control.ask("POWER ON") == "OK"
    uart.expect(BOOT_URCS, timeout_s=0.3)
    uart.send(b"AT+CPOF\r")
    uart.expect(b"AT+CPOF\r" + OK)
    assert control.ask("POWER ON") == "OK"  # while shutting down
    uart.expect(BOOT_URCS, timeout_s=0.3)
    cmd(uart, b"AT", b"AT\r" + OK)
    assert state(control)["power_cycles"] == 2
    assert uart.drain(0.7) == b""  # the first boot's timer did not survive


def test_the_input_file_holds_status_and_battery_readings_the_board_reads_without_requests(tmp_path, monkeypatch):
    from cellmqtt.port import _pc
    from tools.sim7600_emu.model import ADC_RING, input_file

    path = str(tmp_path / "inputs")
    input_file(path)
    with ThreadedEmulator(power_on=False, time_scale=0, seed=3, inputs=path) as emulator:
        control = Control(emulator.control_address)
        monkeypatch.setattr(_pc, "_inputs", open(path, "rb", buffering=0))
        monkeypatch.setattr(_pc, "_control", None)  # a request would fail
        readings = [_pc.adc_read_mv(35) for _ in range(ADC_RING)]
        assert _pc.adc_read_mv(36) == 0  # not BAT_ADC
        assert _pc.input_pin(34).value() == 0
        assert control.ask("POWER ON") == "OK"
        assert _pc.input_pin(34).value() == 1
        assert control.ask("POWER OFF") == "OK"  # the modem off: readings drawn afresh
        again = [_pc.adc_read_mv(35) for _ in range(ADC_RING)]
        _pc._inputs.close()
        control.close()
    for mv in readings + again:
        assert 1971 <= mv <= 1979  # as ADC answers: half the cell, with its noise
    assert len(set(readings)) > 1 and again != readings


def test_a_board_pin_sends_a_level_once_per_control_connection(bench):
    # the simulated board's GPIO (port/_pc.py): writing the level the wire holds sends
    # nothing (a window's power-on wrote FLIGHT and DTR unchanged, two round trips), but
    # a new control connection, which may reach an emulator that restarted, sends it again
    from cellmqtt import port
    from cellmqtt.port import _pc

    emulator, _, control = bench
    saved = _pc._settings["control"]
    port.configure(control=emulator.control_address)
    try:
        dtr = port.output_pin(32, 1)
        assert control.ask("GET 32") == "1"
        assert control.ask("SET 32 0") == "OK"  # behind the board's back, as a restart would
        dtr.value(1)
        assert control.ask("GET 32") == "0"  # not sent: the board's wire already held 1
        _pc._control.close()  # the board's next request opens a new connection
        dtr.value(1)
        assert control.ask("GET 32") == "1"
        dtr.value(0)
        assert control.ask("GET 32") == "0"
    finally:
        _pc._settings["control"] = saved
        _pc._control.close()
