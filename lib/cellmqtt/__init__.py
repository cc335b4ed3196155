"""cellmqtt: leak-free cellular MQTT for MicroPython on ESP32 + SIM7600."""

VERSION = "0.1.0"
