# network as the ESP32 port has it, for an import of it: PPP is created only in a window.


class PPP:
    def __init__(self, stream):
        self._stream = stream
