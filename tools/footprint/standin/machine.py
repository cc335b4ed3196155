# machine as far as booting cellmqtt and running a window touch it: pins that drive
# nothing unless a stand-in device is wired to them (standin/modem.py: PWRKEY, STATUS),
# an ADC, the RTC, and deep sleep as the end of the run it stops.

_wired = {}  # pin number -> the device on it: device.drive(number, level), device.level(number)


def wire(number, device):
    _wired[number] = device


class Pin:
    IN = 1
    OUT = 3

    def __init__(self, number, mode=IN, value=0):
        self._number = number
        self._level = value

    def value(self, level=None):
        device = _wired.get(self._number)
        if level is None:
            return self._level if device is None else device.level(self._number)
        self._level = level
        if device is not None:
            device.drive(self._number, level)


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin):
        pass

    def atten(self, attenuation):
        pass

    def read_uv(self):
        return 2050000  # a 4.1 V battery behind the board's halving divider


class RTC:
    """Keeps what the firmware sets (the network's time); the clock itself is time.time()."""

    _set = None
    _memory = b""  # RTC memory: a restart of this process is a power loss

    def datetime(self, value=None):
        if value is None:
            return RTC._set
        RTC._set = value

    def memory(self, data=None):
        if data is None:
            return RTC._memory
        RTC._memory = bytes(data)


class DeepSleep(BaseException):
    """deepsleep(): a board stops here and wakes through a reset."""


def deepsleep(ms=0):
    raise DeepSleep(ms)


def unique_id():
    return b"\x24\x0a\xc4\x00\x01\x02"
