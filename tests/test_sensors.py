from cellmqtt import sensors


def test_board_sensor_reports_uptime_and_battery():
    reading = sensors.BoardSensor().read()
    assert reading["uptime_s"] >= 0 and reading["battery_mv"] >= 0


def test_board_sensor_without_battery_pin():
    assert "battery_mv" not in sensors.BoardSensor(battery_adc_pin=None).read()


def test_synthetic_sensor_is_repeatable():
    a, b = sensors.SyntheticSensor(), sensors.SyntheticSensor()
    first = [a.read() for _ in range(25)]
    assert first == [b.read() for _ in range(25)]
    assert first[0] == {"temp_c10": 216, "n": 1} and first[19]["temp_c10"] == 215
