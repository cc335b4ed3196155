# sys as on an ESP32: cellmqtt.port picks its implementation from sys.platform.
import sys as _sys

for _name in dir(_sys):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_sys, _name)
platform = "esp32"
