# network as an ESP32 has it, as far as cellmqtt's port/esp32.py uses it: PPP over the
# stand-in UART. The emulator has no PPP peer (a PC has no PPP to talk to it), so this
# PPP reads what the modem sends while connected, as lwIP's does through the UART's
# RX-idle interrupt, counts as connected while the emulator's call is in data mode and
# no NO CARRIER came, and sockets go straight to their destination (as with the PC
# port's PPP, port/_pc.py). Neither disconnect() nor active(False) takes the UART's
# interrupt back (MicroPython 1.24 does not): the port layer must.
import json

import esp32_machine

_INACTIVE, _ACTIVE, _CONNECTING, _CONNECTED = 0, 1, 3, 4
_EALREADY = 114
_NO_CARRIER = b"NO CARRIER"
_ADDRESS = "10.64.64.64"


class PPP:
    SEC_NONE = 0
    SEC_PAP = 1
    SEC_CHAP = 2

    def __init__(self, stream):
        self._stream = stream
        self._state = _INACTIVE
        self._tail = b""

    def active(self, *state):
        if state:
            if state[0] and self._state == _INACTIVE:
                self._state = _ACTIVE
            elif not state[0]:
                self._state = _INACTIVE
        return self._state != _INACTIVE

    def connect(self, security=SEC_NONE, user=None, key=None):
        if self._state == _INACTIVE:
            self._state = _ACTIVE
            self._stream.irq(self.poll, self._stream.IRQ_RXIDLE)
        if self._state in (_CONNECTING, _CONNECTED):
            raise OSError(_EALREADY)
        self._tail = b""
        self._state = _CONNECTING
        self.poll()

    def poll(self, irq_arg=None):
        """Takes what the modem sent while connecting or connected; a NO CARRIER
        among it ends the link (lwIP would notice later, by LCP echo)."""
        total = 0
        while self._state >= _CONNECTING:
            data = self._stream.read(256)
            if not data:
                break
            total += len(data)
            seen = self._tail + data
            if _NO_CARRIER in seen:
                self._state = _ACTIVE
            self._tail = seen[-len(_NO_CARRIER):]
        return total

    def disconnect(self):
        if self._state in (_CONNECTING, _CONNECTED):
            self._state = _ACTIVE

    def isconnected(self):
        if self._state == _CONNECTING and json.loads(esp32_machine.control.ask("STATE"))["data_mode"]:
            self._state = _CONNECTED
        return self._state == _CONNECTED

    def status(self):
        return self._state

    def ipconfig(self, name):
        if name != "addr4":
            raise ValueError("unknown config param")
        return (_ADDRESS if self._state == _CONNECTED else "0.0.0.0", "255.255.255.255")
