# machine as far as importing and booting cellmqtt touch it: pins that drive nothing.


class Pin:
    IN = 1
    OUT = 3

    def __init__(self, number, mode=IN, value=0):
        self._level = value

    def value(self, level=None):
        if level is None:
            return self._level
        self._level = level


def unique_id():
    return b"\x24\x0a\xc4\x00\x01\x02"
