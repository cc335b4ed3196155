from cellmqtt import port, sensors, synthetic

# The SIM7600 emulator's cell (tools/sim7600_emu/model.py: BATTERY_MV, BATTERY_NOISE_MV), which
# the board's GPIO 35 sees through a 100k/100k divider. The lanes run with the emulator
# (python -m tools.services -- ...), the port's ADC asks its control port.
EMULATOR_BATTERY_MV = 3950
EMULATOR_NOISE_MV = 8


def test_board_sensor_reports_uptime_and_battery():
    reading = sensors.BoardSensor().read()
    assert reading["uptime_s"] >= 0 and reading["battery_mv"] >= 0


def test_board_sensor_reports_the_cell_not_the_pin():
    low, high = EMULATOR_BATTERY_MV - EMULATOR_NOISE_MV, EMULATOR_BATTERY_MV + EMULATOR_NOISE_MV
    for _ in range(5):
        pin_mv = port.adc_read_mv(35)
        assert low // 2 <= pin_mv <= high // 2, pin_mv  # half the cell at the pin
        battery_mv = sensors.BoardSensor(35).read()["battery_mv"]
        assert low <= battery_mv <= high, battery_mv  # what a window publishes: the cell's voltage


def test_board_sensor_without_battery_pin():
    assert "battery_mv" not in sensors.BoardSensor(battery_adc_pin=None).read()


def test_synthetic_sensor_is_repeatable():
    a, b = synthetic.SyntheticSensor(), synthetic.SyntheticSensor()
    first = [a.read() for _ in range(25)]
    assert first == [b.read() for _ in range(25)]
    assert first[0] == {"temp_c10": 216, "n": 1} and first[19]["temp_c10"] == 215
