"""Sensors: anything with `read() -> dict` of small JSON values. The duty cycle stamps
each reading with its seq; a sensor only measures."""

from . import port
from ._const import const

_BATTERY_DIVIDER = const(2)  # LilyGO T-SIM7600X: the battery reaches IO35 through a 100k/100k divider


class BoardSensor:
    """The board's own figures: battery voltage (ADC) and uptime."""

    def __init__(self, battery_adc_pin=35):
        self.battery_adc_pin = battery_adc_pin
        self._boot = port.ticks_ms()

    def read(self):
        reading = {"uptime_s": port.ticks_diff(port.ticks_ms(), self._boot) // 1000}
        if self.battery_adc_pin is not None:
            reading["battery_mv"] = port.adc_read_mv(self.battery_adc_pin) * _BATTERY_DIVIDER
        return reading
