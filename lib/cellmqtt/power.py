"""The modem power manager: drives PWRKEY, FLIGHT, DTR and the optional power-enable
line (the pins config.power_lines makes from a pin map), knows the modem's power state
at every moment, and accounts its on-time (the dominant energy cost: ~500 mA on, 20 uA off).

Power on: power-enable high (if any), FLIGHT high, DTR low, PWRKEY pressed 500 ms, then
wait (bounded) for STATUS high or for the caller's readiness check (the AT channel
seeing RDY). Power off, each step only if the previous one failed:
AT+CPOF (through the caller's callback) and STATUS low; a 3 s PWRKEY press and STATUS
low; the power-enable line dropped. Timings: SIM7600 Hardware Design 3.2.
"""

from . import port
from ._const import const
from .errors import ModemError, StateError

OFF = "off"
STARTING = "starting"
ON = "on"
STOPPING = "stopping"

_PRESS_ON_MS = const(500)  # >= 100 ms at the module; LilyGO presses 500 ms
_PRESS_OFF_MS = const(3000)  # >= 2.5 s at the module
# STATUS goes high 12-16 s after the press: a quarter over that for a cold modem or a weak
# battery (config: modem.boot_timeout_s)
_READY_TIMEOUT_MS = const(20000)
_OFF_TIMEOUT_MS = const(30000)  # STATUS low 25-26 s after a key power-off
_POLL_MS = const(50)

# counters wrap at 2**30 without an int past it: on a 32-bit port that is a heap object
_WRAP = const(0x3FFFFFFF)


class PowerManager:
    """`lines`: the board's pins (pwrkey, flight, dtr, power_en, status), each an object
    with .value([level]) or None where not wired: config.power_lines(pins) makes them
    from a pin map, at boot (the code that does goes with config.py)."""

    def __init__(self, lines, ready_timeout_ms=_READY_TIMEOUT_MS, off_timeout_ms=_OFF_TIMEOUT_MS,
                 press_on_ms=_PRESS_ON_MS, press_off_ms=_PRESS_OFF_MS):
        self._pwrkey, self._flight, self._dtr, self._power_en, self._status = lines
        self.ready_timeout_ms = ready_timeout_ms
        self.off_timeout_ms = off_timeout_ms
        self.press_on_ms = press_on_ms
        self.press_off_ms = press_off_ms
        self.state = OFF
        # on-time split: in ms it passes 2**30 in months; in s, after 34 years switched on
        self.total_on_s = 0
        self._total_ms = 0  # the part under a second
        self.cycle_on_ms = 0
        self.power_cycles = 0  # wraps at 2**30
        self._on_since = 0

    def _move(self, state, new_state, action):
        # each action has one state it starts from (_cut's way back to OFF has no check)
        if self.state != state:
            raise StateError("modem power", self.state, action)
        self.state = new_state

    @property
    def total_on_ms(self):
        """On-time since boot; computed when read, as it may be a long int."""
        return self.total_on_s * 1000 + self._total_ms

    def status_high(self):
        """The STATUS line, or None on a board that does not wire it."""
        return None if self._status is None else self._status.value() == 1

    async def _press(self, ms):
        self._pwrkey.value(1)
        try:
            await port.hold_ms(ms)
        finally:
            self._pwrkey.value(0)

    async def _wait_status(self, level, timeout_ms, ready=None):
        start = port.ticks_ms()
        while port.ticks_diff(port.ticks_ms(), start) < timeout_ms:
            if self._status is not None and self._status.value() == level:
                return True
            if ready is not None and await ready():
                return True
            await port.asleep_ms(_POLL_MS)
        return False

    async def power_on(self, ready=None):
        """Switch the modem on. `ready` is an optional async callable that returns True once
        the modem answers (the AT channel saw RDY); with neither STATUS nor `ready` the
        press alone is trusted. Raises ModemError if it does not come up in time."""
        self._move(OFF, STARTING, "power on")
        self._on_since = port.ticks_ms()
        self.power_cycles = self.power_cycles + 1 if self.power_cycles < _WRAP else 0
        try:
            if self._power_en is not None:
                self._power_en.value(1)
            if self._flight is not None:
                self._flight.value(1)
            if self._dtr is not None:
                self._dtr.value(0)
            if self.status_high():  # left on by an MCU reset: a press would switch it off
                self._move(STARTING, ON, "finish power on")
                return
            await self._press(self.press_on_ms)
            if (self._status is not None or ready is not None) and not await self._wait_status(
                    1, self.ready_timeout_ms, ready):
                raise ModemError("modem did not start within %d ms" % self.ready_timeout_ms)
        except BaseException:
            self._cut()
            raise
        self._move(STARTING, ON, "finish power on")

    async def power_off(self, send_cpof=None):
        """Switch the modem off. `send_cpof` is an async callable that sends AT+CPOF (the
        graceful way: the modem deregisters and saves its state). Ends in OFF; raises
        ModemError when nothing made STATUS drop and there is no power-enable line to cut."""
        self._move(ON, STOPPING, "power off")
        try:
            if self.status_high() is False:  # already off (brown-out): nothing to tell it
                return
            if send_cpof is not None:
                try:
                    await send_cpof()
                    graceful = await self._wait_status(0, self.off_timeout_ms)
                except Exception:  # the modem may be unusable: fall through to the key
                    # unless it took the command and only its answer was lost: a key
                    # press now would switch it back on
                    graceful = self.status_high() is False
                if graceful or self._status is None:
                    return
            await self._press(self.press_off_ms)
            if self._status is not None and not await self._wait_status(0, self.off_timeout_ms):
                if self._power_en is None:
                    raise ModemError("modem still on after AT+CPOF and a PWRKEY press")
        finally:
            self._cut()

    def _cut(self):
        if self._power_en is not None:
            self._power_en.value(0)
        self.cycle_on_ms = port.ticks_diff(port.ticks_ms(), self._on_since)
        ms = self._total_ms + self.cycle_on_ms
        self.total_on_s += ms // 1000
        self._total_ms = ms % 1000
        self.state = OFF
