"""The modem: power and pins, boot, radio and registration, timers, UART output and
accounting. The command line (commands.py) and the links (links.py) act through it.

Power states: off -> booting (PWRKEY press; silent) -> on (answers) -> stopping
(AT+CPOF or a long press; silent, STATUS still high) -> off. A brown-out, POWER OFF, the
supply pin or the reset pin go straight to off. Every delay is a model latency run
through the loop's timers, which a power loss cancels all at once.
"""

import asyncio
import random
import time

from . import faults as faultlib
from . import quirks as quirklib
from .commands import Framer
from .links import LinkTable
from .tls_sessions import TlsStack
from .ppp import DataCall
from .windows import WindowGate
from .model import (ADC_RING, BATTERY_DIVIDER, BATTERY_MV, BATTERY_NOISE_MV, BOOTING, FINAL, HEADER, LATENCY_MS,
                    OFF, ON, POWER_OFF_PRESS_MS, POWER_ON_PRESS_MS, RSSI, STOPPING, URC, ZONE_QUARTERS,
                    call_later, parse_pins)

BOOT_URCS = (b"RDY", b"+CPIN: READY", b"SMS DONE", b"PB DONE")
LATE_BOOT_URCS = (b"SMS DONE", b"PB DONE", b"+CPIN: READY")  # quirk boot_urcs_again
ODD_REG_READS = 3  # quirk reg_unknown_first: one round of AT+CEREG?, CGREG?, CREG?
# quirk pieces: each piece a write of its own, at the UART's pace (115200 baud, 8N1), so
# the host reads them as they trickle in and a long answer takes no longer than on a modem
BYTE_S = 10 / 115200


class _Driving:
    """An attribute of the modem that the lines it drives (STATUS, RI) follow: setting
    it updates the board's input file, if there is one."""

    def __init__(self, default):
        self.default = default
        self.name = None

    def __set_name__(self, owner, name):
        self.name = "_" + name

    def __get__(self, modem, owner=None):
        return self if modem is None else getattr(modem, self.name, self.default)

    def __set__(self, modem, value):
        setattr(modem, self.name, value)
        modem.drive_inputs()


class Modem:
    state = _Driving(OFF)
    status_early = _Driving(False)  # quirk slow_boot: STATUS high while still booting
    ri = _Driving(1)
    inputs = None  # model.InputFile where the board reads STATUS and RI, or None

    def __init__(self, clock, pins=None, power_on=True, rng=None, quirks=()):
        self.clock = clock
        self.start_quirks = quirklib.parse(quirks)
        self.pins = parse_pins(pins or {})
        self._pin_names = {gpio: name for name, gpio in self.pins.items()}
        self.start_power_on = power_on
        self.rng = rng or random.Random()
        self.sink = None   # callable taking bytes: the connected UART, if any
        self.trace = None  # callable(direction, bytes) when tracing
        self.faults = faultlib.Faults()
        self.links = LinkTable(self)
        self.tls = TlsStack(self)  # AT+CCH*: the SSL sessions and files (tls_sessions.py)
        self.framer = Framer(self)
        self.call = DataCall(self)  # ATD*99#: data mode (ppp.py)
        self.gate = WindowGate(self)  # window ends and the power-on gate (windows.py)
        self._timers = set()
        self._paced = bytearray()  # quirk pieces: output not yet sent
        self._pacer = None  # the task that sends it
        self.state = OFF
        self.reset()

    # -- life cycle ------------------------------------------------------------------
    def reset(self):
        """A fresh modem in the start-up power state: no faults, the start-up quirks,
        links closed, zero accounting, pins at their idle levels. The UART stays connected."""
        self._halt()
        self.state = OFF
        self.faults.clear()
        self.quirks = set(self.start_quirks)
        self.tls.files.clear()  # a fresh modem: empty flash
        self.ctzu = 0  # AT+CTZU: nonvolatile, so a boot keeps it (docs/modem.md, Time)
        self.ntp_server = ("", 0)  # AT+CNTP="<server>",<zone>
        self.truncate_next = False  # a command-triggered truncate: cut this command's answer
        self.levels = {self.pins["FLIGHT"]: 1}  # the board keeps FLIGHT high
        if "POWER_EN" in self.pins:
            self.levels[self.pins["POWER_EN"]] = 1 if self.start_power_on else 0
        self.uart_rx_bytes = self.uart_tx_bytes = self.commands = self.power_cycles = 0
        self.call.sessions = self.call.data_rx_bytes = 0
        self._powered_ms = 0.0
        self._powered_since = None
        self._press_at = None
        self._held_in_reset = False
        self._settings()
        if self.start_power_on:
            self.power_on(announce=False)

    def _settings(self):
        """What a boot restores (nothing is saved with AT&W here)."""
        self.echo = True
        self.cmee = 1
        self.rx_manual = False
        self.tls.settings()
        self.srip = 1
        self.iphead = 1
        self.ccfg = [10, 0, 0, 1, 0, 0, 75000]  # HeaderType is ccfg[4]
        self.ciptimeout = [120000, 120000, 120000]
        self.cipmode = self.cipsendmode = 0
        self.contexts = {1: ("IP", "")}
        self.reg_urc = {"CREG": 0, "CGREG": 0, "CEREG": 0}
        self.csclk = 0
        self.call.dtr_mode = 1
        self.cfun = 1
        self.net = "closed"  # closed, opening, open, closing
        self.reg_ready = False
        self._reg_pending = False
        self._last_stat = 0
        self.ri = 1
        self.status_early = False
        # what the boot quirks still owe this boot
        self.cpin_failures = []
        self.cpin_silent = False
        self.odd_reg_reads = 0
        self.late_boot_urcs = False

    def _halt(self):
        """Everything in flight stops: timers, links, a half-received command."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self.links.drop_all()
        self.tls.drop_all()
        self.framer.reset()
        self.call.reset()

    def power_on(self, announce=True):
        """Booted and registered at once (POWER ON), whatever it was doing; the boot
        URCs go out when announce."""
        if self.state == STOPPING:
            self.power_off()
        if self.state == OFF:
            self._supply_on()
        elif self.state == BOOTING:
            self._halt()
        else:
            return
        self._booted(announce, True)

    def power_off(self):
        """Power gone at once (POWER OFF, brown-out): no answer, links gone, STATUS low."""
        if self.state == OFF:
            return
        self._halt()
        self._powered_ms += self.clock.now_ms() - self._powered_since
        self._powered_since = None
        self.state = OFF
        self.net = "closed"
        self.reg_ready = False
        self.ri = 1

    def shutdown(self):
        """AT+CPOF or a long PWRKEY press: silent at once, off after the shutdown time."""
        self._halt()
        self.state = STOPPING
        self.after(LATENCY_MS["shutdown"], self.power_off)

    def restart(self):
        """AT+CRESET: links gone, then a full boot with its URCs."""
        self._halt()
        self._settings()
        self._boot()

    def _supply_on(self):
        self.power_cycles += 1
        self._powered_since = self.clock.now_ms()
        self._settings()

    def _boot(self):
        self.state = BOOTING
        if self.clock.scale == 0:  # no latency: up as the key is let go, STATUS high before the press's reply
            self._booted(True, False)
        elif self.quirk("slow_boot"):
            self.after(LATENCY_MS["slow_status"], setattr, self, "status_early", True)
            self.after(LATENCY_MS["slow_boot"], self._booted, True, False)
        else:
            self.after(LATENCY_MS["boot"], self._booted, True, False)

    def _booted(self, announce, registered):
        self.state = ON
        self.cpin_failures = [13, 14] if self.quirk("sim_failure_at_boot") else []
        self.cpin_silent = self.quirk("cpin_silent_once")
        self.odd_reg_reads = ODD_REG_READS if self.quirk("reg_unknown_first") else 0
        self.late_boot_urcs = self.quirk("boot_urcs_again")
        if announce:
            urcs = BOOT_URCS[:1] if self.faults.has("no_sim") else BOOT_URCS
            for text in urcs * 2 if self.quirk("boot_urcs_again") else urcs:
                if text != b"+CPIN: READY" or not self.cpin_failures:  # not ready yet
                    self.urc(text)
        self.radio_changed(registered)

    def link_opened(self):
        """A link connected: the boot URCs that come late, once a boot."""
        if self.late_boot_urcs:
            self.late_boot_urcs = False
            for text in LATE_BOOT_URCS:
                self.urc(text)

    def has_supply(self):
        return "POWER_EN" not in self.pins or self.level("POWER_EN") == 1

    # -- pins -------------------------------------------------------------------------
    def level(self, name):
        return self.levels.get(self.pins.get(name), 0)

    def set_pin(self, gpio, value):
        name = self._pin_names.get(gpio)
        if name in ("STATUS", "RI", "BAT_ADC"):
            raise ValueError("GPIO %d is the modem's %s, an input of the board" % (gpio, name))
        old = self.levels.get(gpio, 0)
        self.levels[gpio] = value
        if name == "PWRKEY":
            self._pwrkey(old, value)
        elif name == "FLIGHT":
            self.radio_changed()
        elif name == "POWER_EN" and not value:
            self.power_off()
        elif name == "RESET":
            self._reset_pin(old, value)
        elif name == "DTR":
            self.call.dtr(old, value)

    def get_pin(self, gpio):
        name = self._pin_names.get(gpio)
        if name == "STATUS":
            return self.status_pin()
        if name == "RI":
            return self.ri
        return self.levels.get(gpio, 0)

    def adc(self, gpio):
        """mV at the GPIO: on BAT_ADC the cell through the board's divider (the firmware
        multiplies back, sensors.BoardSensor), 0 elsewhere."""
        if self._pin_names.get(gpio) != "BAT_ADC":
            return 0
        return (BATTERY_MV + self.rng.randint(-BATTERY_NOISE_MV, BATTERY_NOISE_MV)) // BATTERY_DIVIDER

    def drive_inputs(self):
        if self.inputs is not None:
            self.inputs.publish({self.pins["STATUS"]: self.status_pin(), self.pins["RI"]: self.ri})
            if self.state == OFF:  # once a window: the board reads the battery with the modem off
                battery = self.pins["BAT_ADC"]
                self.inputs.publish_adc(battery, [self.adc(battery) for _ in range(ADC_RING)])

    def status_pin(self):
        up = self.state in (ON, STOPPING) or (self.state == BOOTING and self.status_early)
        return 1 if up else 0

    def _pwrkey(self, old, value):
        # The ESP32 pin drives the key through a transistor: high = pressed.
        now = self.clock.now_ms()
        if value and not old:
            self._press_at = now
            return
        if not old or value or self._press_at is None:
            return
        held_ms = now - self._press_at
        self._press_at = None
        any_press = self.clock.scale == 0
        if self.state == OFF:
            if self.has_supply() and (any_press or held_ms >= POWER_ON_PRESS_MS):
                self.gate.power_on(self._switch_on)
        elif self.state in (BOOTING, ON) and (any_press or held_ms >= POWER_OFF_PRESS_MS):
            self.shutdown()

    def _switch_on(self):
        self._supply_on()
        self._boot()

    def _reset_pin(self, old, value):
        # High holds the module in reset (as off); low again boots it.
        if value and not old and self.state != OFF:
            self._held_in_reset = True
            self.power_off()
        elif old and not value and self._held_in_reset:
            self._held_in_reset = False
            self._supply_on()
            self._boot()

    def asleep(self):
        """AT+CSCLK=1 and DTR high: the UART sleeps and ignores what it is sent."""
        return self.csclk == 1 and self.level("DTR") == 1

    # -- radio ------------------------------------------------------------------------
    def radio_on(self):
        return self.level("FLIGHT") == 1 and self.cfun == 1

    def radio_changed(self, at_once=False):
        """FLIGHT, AT+CFUN or a boot changed the radio: (re)register or lose the network."""
        if self.state != ON:
            return
        if not self.radio_on():
            self.reg_ready = False
            self.lose_network()
        elif at_once:
            self.reg_ready = True
        elif not self.reg_ready and not self._reg_pending:
            self._reg_pending = True
            self.after(LATENCY_MS["register"], self._registered)
        self.note_registration()

    def _registered(self):
        self._reg_pending = False
        self.reg_ready = self.radio_on()
        self.note_registration()

    def stat(self):
        """The <stat> of +CREG/+CGREG/+CEREG."""
        if self.state != ON or not self.radio_on() or self.faults.has("no_sim"):
            return 0
        if self.faults.has("reg_denied"):
            return 3
        if self.faults.has("no_signal") or not self.reg_ready:
            return 2
        return 1

    def csq(self):
        if self.state == ON and self.radio_on() and not self.faults.has("no_signal"):
            return RSSI, 99
        return 99, 99

    def note_registration(self):
        stat = self.stat()
        if stat != self._last_stat:
            self._last_stat = stat
            for name, mode in self.reg_urc.items():
                if mode:
                    self.urc(b"+%s: %d" % (name.encode(), stat))
            if stat == 1 and self.ctzu:  # the network's time (NITZ) comes with the registration
                self.urc(b'+CTZV: %+03d,"%s",0' % (ZONE_QUARTERS, self.clock_stamp(0).encode()))

    def clock_stamp(self, quarters):
        """The time as `yy/MM/dd,hh:mm:ss`, local to a zone of `quarters` quarter hours."""
        moment = time.gmtime(self.clock.utc_ms() / 1000.0 + quarters * 900)
        return "%02d/%02d/%02d,%02d:%02d:%02d" % (moment.tm_year % 100, moment.tm_mon, moment.tm_mday,
                                                   moment.tm_hour, moment.tm_min, moment.tm_sec)

    def lose_network(self):
        """+CIPEVENT: every link gone, no +IPCLOSE. False when the network was not open."""
        if self.net != "open":
            return False
        self.links.drop_all()
        self.tls.drop_all()
        self.net = "closed"
        self.urc(b"+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY")
        return True

    # -- faults -----------------------------------------------------------------------
    def fault(self, name, params):
        params = faultlib.normalize(name, params)
        if name in faultlib.ACTIONS and not params["command"]:
            if not self.act(name, params):
                raise ValueError("network_lost: the network is not open")
        elif name == "brownout" and not params["command"]:
            self.power_off()
        elif name == "carrier_drop" and params["ms"] < 0:
            if not self.call.carrier_drop():
                raise ValueError("carrier_drop: no data call is up")
        else:
            self.faults.add(name, params)
            self.note_registration()

    def act(self, name, params):
        """An action fault happens now; False when it has nothing to act on."""
        if name == "garbage":
            rng = random.Random(params["seed"]) if params["seed"] >= 0 else self.rng
            self.write_raw(rng.randbytes(params["bytes"]))
        elif name in ("remote_close", "send_timeout"):
            self.links.fail(params["link"], 1 if name == "remote_close" else 2)
        else:
            return self.lose_network()
        return True

    def act_on_command(self, name, params):
        """An action fault whose command arrived: what it acts on may be gone (a
        closed link, a closed network); then it does nothing."""
        try:
            self.act(name, params)
        except ValueError:
            pass

    def clear_faults(self):
        self.faults.clear()
        self.note_registration()

    # -- quirks -----------------------------------------------------------------------
    def quirk(self, name):
        return name in self.quirks

    def set_quirks(self, names, on):
        """Quirks (names or "all") on or off from now; ValueError for an unknown name."""
        chosen = quirklib.parse(names)
        if on:
            self.quirks |= chosen
        else:
            self.quirks -= chosen

    # -- the UART ---------------------------------------------------------------------
    def attach(self, sink):
        self.sink = sink

    def detach(self, sink):
        if self.sink is sink:
            self.sink = None

    def feed(self, data):
        """Bytes from the host; ignored unless the modem is on and awake."""
        self.uart_rx_bytes += len(data)
        if self.trace is not None:
            self.trace("rx", data)
        self.framer.feed(data)

    def listening(self):
        return self.state == ON and not self.asleep()

    def write_raw(self, data):
        """Bytes on the TX line, whatever the state (line noise too)."""
        self.uart_tx_bytes += len(data)
        if self.trace is not None:
            self.trace("tx", data)
        if self._paced or self.quirk("pieces"):
            self._paced += data  # behind what is still going out, so the order holds
            if self._pacer is None:
                self._pacer = asyncio.get_running_loop().create_task(self._pace())
        elif self.sink is not None:
            self.sink(data)

    async def _pace(self):
        started = time.monotonic()
        sent = 0
        try:
            while self._paced:
                size = self.rng.randint(1, 7)
                piece = bytes(self._paced[:size])
                del self._paced[:size]
                if self.sink is not None:
                    self.sink(piece)
                sent += len(piece)
                await asyncio.sleep(max(0, started + sent * BYTE_S - time.monotonic()))
        finally:
            self._pacer = None

    async def stop_output(self):
        """Stop sending what the pieces quirk still holds (the emulator is stopping)."""
        pacer = self._pacer
        self._paced = bytearray()
        if pacer is not None:
            pacer.cancel()
            await asyncio.gather(pacer, return_exceptions=True)

    def framed(self, text, kind):
        """A line as this modem sends it, CR LF around it: INFO (several joined by CR
        LF), FINAL, URC, or HEADER (a counted payload follows right after its CR LF)."""
        if kind in (URC, HEADER) and self.quirk("no_space") and text.startswith(b"+"):
            text = text.replace(b": ", b":", 1)
        if kind == FINAL and self.quirk("trailing_space"):
            text += b" "
        if self.quirk("blank_lines"):
            return b"\r\n\r\n" + text + (b"\r\n" if kind == HEADER else b"\r\n\r\n")
        return b"\r\n" + text + b"\r\n"

    def respond(self, data):
        """A command's answer; a pending `truncate` cuts its first line in the middle."""
        if self.state != ON:
            return
        if self.truncate_next or self.faults.take("truncate") is not None:
            self.truncate_next = False
            start = 2 if data.startswith(b"\r\n") else 0
            end = data.find(b"\r\n", start)
            end = len(data) if end < 0 else end
            data = data[:start + max(1, (end - start) // 2)]
        self.write_raw(data)

    def urc(self, text):
        self.urc_raw(self.framed(text, URC))

    def late_final(self, text):
        """A final result that comes on its own, after the answer it belongs to."""
        if self.state == ON:
            self.write_raw(self.framed(text, FINAL))

    def urc_raw(self, data):
        """Unsolicited output; RI pulses low when it wakes a sleeping host line."""
        if self.state != ON:
            return
        self.write_raw(data)
        if self.asleep() and self.ri:
            self.ri = 0
            self.after(LATENCY_MS["ri_pulse"], setattr, self, "ri", 1)

    # -- time and accounting ----------------------------------------------------------
    def after(self, model_ms, fn, *args):
        """Run fn(*args) after a model latency; a power loss cancels it."""
        call_later(self._timers, self.clock.seconds(model_ms), fn, *args)

    def powered_ms(self):
        since = self._powered_since
        return self._powered_ms + (self.clock.now_ms() - since if since is not None else 0)

    def state_dict(self):
        return dict(self.call.state_dict(), **{
            "powered": self.state != OFF,
            "status_pin": self.status_pin(),
            "netopen": self.net == "open",
            "links": self.links.numbers(),
            "tls_sessions": self.tls.numbers(),
            "tls_started": self.tls.started,
            "tls_files": sorted(self.tls.files),
            "registered": self.stat(),
            "uart_rx_bytes": self.uart_rx_bytes,
            "uart_tx_bytes": self.uart_tx_bytes,
            "commands": self.commands,
            "powered_ms": int(self.powered_ms()),
            "power_cycles": self.power_cycles,
            "echo": self.echo,
            "quirks": sorted(self.quirks),
        })
