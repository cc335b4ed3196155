"""The emulated SIM7600's data calls: ATD*99# (or AT+CGDATA="PPP",1) -> CONNECT 115200,
data mode byte for byte, the +++ escape with its guard times, ATO, ATH, NO CARRIER,
DTR (AT&D0/1/2) and power loss.

In data mode nothing the host sends is parsed as AT: the bytes are counted as PPP
data (this emulator has no PPP peer and sends nothing back; a PC has no PPP to talk
to it anyway). `+++` leaves data mode only when it stands between two guard times of
silence (1 s on the model clock: at time scale 0 the wall clock's, or a window's share
of it on a virtual clock): the three pluses after >= 1 s without a byte, then 1 s
without one, then `OK` and online command mode. Anything else, a +++ inside data included, is data. ATO goes back
(`CONNECT 115200`), ATH hangs up (`OK`). A carrier drop sends `NO CARRIER` and
leaves data mode. DTR going OFF (the pin 0 -> 1) in data mode: AT&D1 (the default
here) gives `OK` and online command mode, AT&D2 hangs up and gives `OK`, AT&D0
ignores it. Choices where docs/modem.md is silent: the rate is always 115200; a
dial without registration answers NO CARRIER, one with no PDP context ERROR.
"""

from .model import call_later
from .replies import error, ok

GUARD_MS = 1000  # ATM: +++ needs 1 s of silence before and after
RATE = 115200
NONE, DATA, COMMAND = "none", "data", "command"
_DIALS = ("D*99#", "D*99***1#")


class DataCall:
    def __init__(self, modem):
        self.modem = modem
        self.dtr_mode = 1  # AT&D
        self.sessions = 0  # CONNECTs given since the last reset: the PPP sessions
        self.escapes = 0  # +++ escapes taken (not DTR drops): the host kept the guard times
        self.data_rx_bytes = 0
        self._timers = set()
        self.reset()

    def reset(self):
        """No call (power loss, boot): everything pending is dropped silently."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self.state = NONE
        self._last_rx = 0.0
        self._pluses = 0
        self._escape_timer = None

    # -- commands ---------------------------------------------------------------------
    def basic(self, rest):
        """ATD*99#, ATO, ATH, AT&D<n> (rest: the command after AT, upper case); False
        when it is none of these."""
        if rest in _DIALS:
            self.dial(1)
        elif rest in ("O", "O0"):
            self.resume()
        elif rest in ("H", "H0"):
            self.hang_up()
        elif rest in ("&D", "&D0", "&D1", "&D2"):
            self.dtr_mode = int(rest[2:] or 0)
            ok(self.modem)
        else:
            return False
        return True

    def cgdata(self, op, args):
        """AT+CGDATA="PPP",<cid>: the same call as ATD*99***<cid>#."""
        if op != "set" or len(args) != 2 or args[0] != "PPP" or not isinstance(args[1], int):
            error(self.modem)
            return
        self.dial(args[1])

    def dial(self, cid):
        modem = self.modem
        if self.state != NONE or cid not in modem.contexts or not modem.contexts[cid][1]:
            error(modem)  # a call is up already, or no PDP context (AT+CGDCONT) to dial
        elif modem.stat() not in (1, 5) or modem.faults.take("no_carrier") is not None:
            modem.respond(b"\r\nNO CARRIER\r\n")
        else:
            self.sessions += 1
            self._connect()

    def resume(self):
        if self.state != COMMAND:
            self.modem.respond(b"\r\nNO CARRIER\r\n")
            return
        self._connect()

    def _connect(self):
        self.modem.respond(b"\r\nCONNECT %d\r\n" % RATE)
        self.state = DATA
        self._last_rx = self.modem.clock.now_ms()
        self._pluses = 0
        drop = self.modem.faults.take("carrier_drop")
        if drop is not None:
            self._later(drop["ms"], self.carrier_drop)

    def hang_up(self):
        self.reset()
        ok(self.modem)

    # -- data mode --------------------------------------------------------------------
    def in_data_mode(self):
        return self.state == DATA

    def feed(self, data):
        """Bytes from the host in data mode: PPP data, or the +++ escape."""
        now = self.modem.clock.now_ms()
        silent_ms = now - self._last_rx
        self._last_rx = now
        self.data_rx_bytes += len(data)
        if self._escape_timer is not None:  # bytes within the guard after +++: it was data
            self._escape_timer.cancel()
            self._timers.discard(self._escape_timer)
            self._escape_timer = None
            self._pluses = 0
        for byte in data:
            if byte == 43 and (self._pluses or silent_ms >= GUARD_MS) and self._pluses < 3:
                self._pluses += 1
            else:
                self._pluses = 0
            silent_ms = 0
        if self._pluses == 3:
            self._escape_timer = self._later(GUARD_MS, self._escaped)

    def _escaped(self):
        self._escape_timer = None
        self._pluses = 0
        if self.state != DATA:
            return
        if self.modem.faults.take("escape_ignored") is not None:
            return  # the modem took the +++ as data
        self.state = COMMAND
        self.escapes += 1
        ok(self.modem)

    def carrier_drop(self):
        """The network ended the call: NO CARRIER, back to commands. False when no call."""
        if self.state == NONE:
            return False
        self.reset()
        self.modem.urc(b"NO CARRIER")
        return True

    def dtr(self, old, value):
        """The DTR pin moved; OFF is high (ON -> OFF: 0 -> 1)."""
        if not (value and not old) or self.state != DATA or self.dtr_mode == 0:
            return
        if self.dtr_mode == 2:
            self.reset()
        else:
            self.state = COMMAND
            self._escape_timer = None
        self.modem.urc_raw(b"\r\nOK\r\n")

    # -- time ---------------------------------------------------------------------------
    def _later(self, model_ms, fn):
        return call_later(self._timers, self.modem.clock.passing_seconds(model_ms), fn)

    def state_dict(self):
        return {"data_mode": self.state == DATA, "call": self.state,
                "ppp_sessions": self.sessions, "ppp_escapes": self.escapes,
                "data_rx_bytes": self.data_rx_bytes}
