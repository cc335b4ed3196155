# sys as on an ESP32: cellmqtt.port chooses its ESP32 half from sys.platform.
import sys as _sys

for _name in dir(_sys):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_sys, _name)
platform = "esp32"
