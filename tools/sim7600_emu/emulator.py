"""The emulator as one object: a modem, its UART (TCP or pty) and its control port."""

import random

from .control import ControlServer, handle
from .model import Clock, InputFile
from .modem import Modem
from .uart import PtyUart, TcpUart


class Emulator:
    """A SIM7600 on the PC. Construct anywhere; start(), the fault/state/reset calls and
    stop() run in (or are called from) the event loop that serves it.

    power_on: start booted and registered (False: off until PWRKEY or POWER ON).
    time_scale: wall seconds per model second (0: every latency is zero).
    pins: {"PWRKEY": 4, ...} or "PWRKEY=4,..." over the LilyGO T-SIM7600X defaults.
    seed: makes the random parts (ADC noise, garbage, pieces) repeatable.
    quirks: names from quirks.QUIRKS (or "all"): field behaviours the modem has all the
    time, a RESET included.
    clock: UTC epoch ms at the model clock's zero, which AT+CCLK?, +CTZV and AT+CNTP
    answer from (None: the host's UTC now).
    inputs: a simulated board's input file (model.input_file), where the emulator keeps
    the levels of STATUS and RI for the board to read without a control request.
    """

    def __init__(self, power_on=True, time_scale=0.0, pins=None, seed=None, quirks=(), clock=None,
                 inputs=None):
        model_clock = Clock(time_scale)
        model_clock.utc_start_ms = clock
        self.modem = Modem(model_clock, pins=pins, power_on=power_on,
                           rng=random.Random(seed), quirks=quirks)
        if inputs is not None:
            self.modem.inputs = InputFile(inputs)
            self.modem.drive_inputs()
        self.uart_address = None
        self.control_address = None
        self.pty_path = None
        self._uart = None
        self._control = None

    async def start(self, uart="127.0.0.1:0", control="127.0.0.1:0", pty=False):
        """Listen: the UART on `uart` ("host:port", port 0 = any) or on a new pty, and
        the control port on `control` (None: no control port)."""
        try:
            if pty:
                self._uart = PtyUart(self.modem)
                self.pty_path = await self._uart.start()
            else:
                self._uart = TcpUart(self.modem)
                self.uart_address = await self._uart.start(uart)
            if control is not None:
                self._control = ControlServer(self)
                self.control_address = await self._control.start(control)
        except BaseException:
            await self.stop()
            raise

    def fault(self, name, **params):
        """Inject a fault now or arm it (see the package docstring); ValueError if the
        name or a parameter is wrong, or an immediate fault has nothing to act on."""
        self.modem.fault(name, params)

    def clear_faults(self):
        self.modem.clear_faults()

    def set_quirks(self, names, on=True):
        """Quirks (names or "all") on or off until the next RESET; ValueError if unknown."""
        self.modem.set_quirks(names, on)

    def state(self):
        """The STATE figures as a dict."""
        return self.modem.state_dict()

    def reset(self):
        """A fresh modem in the start-up power state; the UART stays connected."""
        self.modem.reset()

    def control(self, line):
        """Answer one control-port request line in-process (e.g. "SET 4 1")."""
        return handle(self, line)

    async def stop(self):
        """Close the ports, every connection and every bridged link."""
        if self._control is not None:
            await self._control.stop()
            self._control = None
        if self._uart is not None:
            await self._uart.stop()
            self._uart = None
        self.modem.power_off()
        await self.modem.stop_output()
        self.modem.links.drop_all()
        await self.modem.links.wait_closed()
        self.modem.tls.drop_all()
        await self.modem.tls.wait_closed()
        if self.modem.inputs is not None:
            self.modem.inputs.close()
            self.modem.inputs = None
