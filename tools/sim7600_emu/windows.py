"""Window ends and the power-on gate: how a harness checks a board between its upload
windows without racing it (tools/simboard.py).

A board opens the modem's UART for each window and closes it once the modem is off, so
the end of each UART connection is the end of a window: the emulator records the
modem's state at that moment (WINDOW n: the n-th connection's record), however soon
the board goes on. With HOLD ON a PWRKEY press that would switch the modem on waits
for a GO: `GO n` lets window n power on, once, if window n - 1 has ended with the
modem off (a modem left on needs no press, and its window is not held).
"""

from .model import OFF

KEPT = 16  # records kept: a harness reads each one as its window's line arrives


class WindowGate:
    def __init__(self, modem):
        self._modem = modem
        self.ended = 0  # UART connections ended
        self._records = {}
        self.hold = False
        self._permit = False
        self._held = None  # the power-on a press asked for while held

    def end(self):
        """A UART connection ended: the state its window left the modem in."""
        modem = self._modem
        self.ended += 1
        self._records[self.ended] = {
            "window": self.ended, "powered": modem.state != OFF, "status_pin": modem.status_pin(),
            "links": modem.links.numbers(), "tls_sessions": modem.tls.numbers(), "call": modem.call.state}
        self._records.pop(self.ended - KEPT, None)

    def record(self, number):
        """The record of the `number`-th window, None if it has not ended yet;
        ValueError once it is too old to be kept."""
        if number > self.ended:
            return None
        if number not in self._records:
            raise ValueError("window %d is no longer kept (the last %d are)" % (number, KEPT))
        return self._records[number]

    def set_hold(self, on):
        self.hold = on
        held, self._held = self._held, None
        if held is not None and not on:
            held()

    def power_on(self, start):
        """A press that switches the modem on: start() now, or at the GO while held."""
        if self.hold and not self._permit:
            self._held = start
            return
        self._permit = False
        start()

    def go(self, number):
        """Window `number` may power on; False when it is not held (see above)."""
        if self._modem.state != OFF or self.ended != number - 1:
            return False
        held, self._held = self._held, None
        if held is None:
            self._permit = True
        elif self._modem.has_supply():
            held()
        return True
