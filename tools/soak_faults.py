"""Random faults for a soak of the simulated board: a catalogue of emulator faults that
end an upload window quickly, a repeatable schedule drawn from a seed, and an injector
that arms each window's fault on the emulator's control port while the modem is off.

The board and the injector meet at each window boundary (tools/sim7600_emu/windows.py):
the emulator holds the press that would switch the modem on until the injector has
read how the last window left the modem (recorded as the board let go of the UART,
not sampled later) and armed the next window's fault. A window that needs no press
(the modem was left on, which that record shows) is not held: its fault counts as
armed late.
Left out, because the firmware would wait out a bound (on the virtual clock: the window's
rate shorter in real time) instead of ending the window quickly: `silent` (AT timeouts
of 1-120 s), `no_signal` (the 60 s registration wait), `truncate` (a probe or command
timeout), `cme code=14` until CLEAR (SIM busy is retried for 10 s). `garbage`,
`remote_close`, `send_timeout` and `network_lost` act at once when set, so they cannot
be armed before a window.

The emulator's quirks (tools/sim7600_emu/quirks.py) are drawn too: one is on for the
window and off after it. A quirk is how real modems behave, not a fault: a window with
one must go through. Left out: `cpin_silent_once` (the AT+CPIN? timeout, 5 s), and the
quirks the emulator has from the start.
"""

import json
import random
import time

from tools.sim7600_emu.quirks import QUIRKS
from tools.sim7600_emu.threaded import Control

# The points of a window: (command prefix, matching commands let through first).
# With at most 20 readings queued there is one data batch, so the CIPSENDs are
# 0 CONNECT, 1 SUBSCRIBE, 2 the data PUBLISH, 3 the health message, 4 DISCONNECT.
# The CIPRXGETs fetch what the broker sent (CONNACK, SUBACK, the PUBACKs): a loss there
# can leave the broker with a batch whose PUBACK never came, which is then sent again.
POINTS = ([("AT+CPIN", 0), ("AT+CEREG", 0), ("AT+CGDCONT", 0), ("AT+NETOPEN", 0),
           ("AT+CIPOPEN", 0)] + [("AT+CIPSEND", n) for n in range(5)]
          + [("AT+CIPRXGET", n) for n in range(4)] + [("AT+CIPCLOSE", 0), ("AT+NETCLOSE", 0)])
# +CME codes answered: 14 (SIM busy) once is retried by the firmware and recovers
CME_CODES = (4, 10, 13, 14, 100)
OPEN_ERRORS = (1, 4, 10)  # +CIPOPEN: <l>,<err>: network failure, not supported, timeout
KINDS = ("brownout", "error", "cme", "open_fail", "short_send", "no_sim", "reg_denied", "quirk")
DRAWN_QUIRKS = tuple(name for name in QUIRKS if name != "cpin_silent_once")


class Fault:
    """One fault for one window: its name, where in the window it strikes, and the
    control-port requests that arm it."""

    def __init__(self, name, point, request, undo=None):
        self.name = name
        self.point = point
        self.request = request
        self.undo = undo  # the request that ends it after the window (CLEAR ends faults)

    @property
    def quirk(self):
        return self.undo is not None

    def __repr__(self):
        return "%s %s" % (self.name, self.point) if self.point else self.name


def _point_label(prefix, skip):
    return prefix if not skip else "%s#%d" % (prefix, skip)


def draw(rng, quirks=DRAWN_QUIRKS):
    """A fault chosen at random: the kind first, then its point and parameters; a quirk
    from `quirks` (none: no quirk)."""
    kind = rng.choice(KINDS if quirks else KINDS[:-1])
    if kind == "quirk":
        name = rng.choice(quirks)
        return Fault("quirk:" + name, "", "QUIRK ON " + name, "QUIRK OFF " + name)
    if kind in ("brownout", "error", "cme"):
        prefix, skip = rng.choice(POINTS)
        request = "FAULT %s command=%s skip=%d" % (kind, prefix, skip)
        if kind != "brownout":
            request += " count=1"
        if kind == "cme":
            code = rng.choice(CME_CODES)
            request += " code=%d" % code
            kind = "cme%d" % code
        return Fault(kind, _point_label(prefix, skip), request)
    if kind == "open_fail":
        err = rng.choice(OPEN_ERRORS)
        return Fault("open_fail%d" % err, "AT+CIPOPEN", "FAULT open_fail err=%d" % err)
    if kind == "short_send":  # the first CIPSEND: the CONNECT packet
        return Fault(kind, "AT+CIPSEND", "FAULT short_send")
    return Fault(kind, "AT+CPIN" if kind == "no_sim" else "AT+CEREG", "FAULT " + kind)


class Schedule:
    """Which window gets which fault: each window independently with probability
    `rate`; the same seed gives the same sequence, however long the run."""

    def __init__(self, rate, seed, quirks_on=()):
        if not 0 <= rate <= 1:
            raise ValueError("the fault rate is a share of windows, 0..1")
        self.rate = rate
        self._rng = random.Random(seed)
        self._quirks = tuple(name for name in DRAWN_QUIRKS if name not in quirks_on)

    def next(self):
        """The fault for the next window, or None."""
        if self._rng.random() < self.rate:
            return draw(self._rng, self._quirks)
        return None


RECORD_WAIT_S = 10.0  # for the emulator to see the UART closed after the window's line


class Injector:
    """Arms and clears faults through a control-port connection of its own, holds each
    window's power-on until its fault is armed, and reads how each window left the
    modem."""

    def __init__(self, control_address):
        self._control = Control(control_address, timeout_s=5.0)
        self._undo = None  # the armed quirk's QUIRK OFF
        self._armed = False  # a fault armed since the last CLEAR
        self.ask("HOLD ON")

    def ask(self, line):
        reply = self._control.ask(line)
        if reply.startswith("ERR"):
            raise RuntimeError("the emulator refused %r: %s" % (line, reply))
        return reply

    def between_windows(self, number):
        """After window `number`'s line: how it left the modem (None if the emulator saw
        no UART connection end for it); then its fault, if it had one, cleared."""
        deadline = time.monotonic() + RECORD_WAIT_S
        reply = self.ask("WINDOW %d" % number)
        while reply == "PENDING" and time.monotonic() < deadline:
            time.sleep(0.001)
            reply = self.ask("WINDOW %d" % number)
        if self._armed:  # a window without a fault has nothing to clear
            self.ask("CLEAR")
            self._armed = False
        if self._undo is not None:
            self.ask(self._undo)
            self._undo = None
        return None if reply == "PENDING" else json.loads(reply)

    def arm(self, fault, number):
        """Arm `fault` (None: nothing) for window `number`, then let it power on.
        Returns False when the window was not held (it began before the fault)."""
        if fault is not None:
            self.ask(fault.request)
            self._armed = True
            self._undo = fault.undo
        return self.ask("GO %d" % number) == "OK" or fault is None

    def close(self):
        self._control.close()
