"""The AT command line and the general commands (the TCP/IP ones are in tcpip.py).

Framing: a command line ends with CR; an LF right after it (CR LF hosts) and LFs
between lines are skipped. Text before `AT` on a line is noise and ignored, as is a
line without `AT`. With echo on, the line goes back followed by CR only. After
AT+CIPSEND's prompt the next <len> bytes are payload, taken by count.

A line may hold several commands (V.250 concatenation, `ATE0+CTZU=1;+CEREG?`): they run
in turn, each one's information lines go out as it runs, and the line ends with one
final result: OK after the last, or the error of the first that fails, which stops the
line. The faults and quirks that wait for a command meet it inside a line too.
"""

from . import faults as faultlib
from . import tcpip, tls
from .model import OPERATOR, ZONE_QUARTERS
from .replies import cme_error, error, int_arg, ok, parse_args, str_arg

LF = 10
MAX_LINE = 1024  # longer than any command of the dialect; past it the line is noise
IDENTITY = {
    "CGMI": "SIMCOM INCORPORATED",
    "CGMM": "SIMCOM_SIM7600G-H",
    "CGMR": "+CGMR: LE20B04SIM7600G22",
    "CGSN": "862636050000007",
}
IMSI = "460001234567890"
ICCID = "+ICCID: 89860012345678901234"
TESTS = {"CTZU": ("+CTZU: (0-1)",)}  # what AT+<NAME>=? lists (the rest answer only OK)


class Framer:
    def __init__(self, modem):
        self.modem = modem
        self.reset()

    def reset(self):
        self.line = bytearray()
        self.overflow = False
        self.payload = None   # bytearray while a CIPSEND payload is being received
        self.need = 0
        self.on_payload = None
        self.rest = []  # the commands of the current line still to run

    def expect_payload(self, length, done):
        self.payload = bytearray()
        self.need = length
        self.on_payload = done

    def feed(self, data):
        index = 0
        size = len(data)
        while index < size and self.modem.listening():
            if self.modem.call.in_data_mode():  # PPP data: not AT (ppp.py)
                self.modem.call.feed(data[index:])
                return
            if self.on_payload is not None:
                take = min(self.need - len(self.payload), size - index)
                self.payload += data[index:index + take]
                index += take
                if len(self.payload) == self.need:
                    done, payload = self.on_payload, bytes(self.payload)
                    self.payload = self.on_payload = None
                    done(payload)
                continue
            end = data.find(b"\r", index)
            self._collect(data[index:] if end < 0 else data[index:end])
            if end < 0:
                return
            index = end + 1
            if index < size and data[index] == LF:
                index += 1
            self._line_done()

    def _collect(self, chunk):
        if not self.line:
            chunk = chunk.lstrip(b"\n")
        if self.overflow or len(self.line) + len(chunk) > MAX_LINE:
            self.overflow = True
            self.line = bytearray()
        else:
            self.line += chunk

    def _line_done(self):
        line = bytes(self.line)
        self.line = bytearray()
        if self.overflow:
            self.overflow = False
            error(self.modem)
            return
        start = line.upper().find(b"AT")
        if start >= 0:
            run(self.modem, line[start:])


def run(modem, line):
    """One command line (starting with AT): its commands in turn, the line's echo before
    the first runs, one final result for the line (replies.ok, replies.error)."""
    modem.commands += 1
    rest = modem.framer.rest
    rest[:] = split_line(line[2:].decode("latin-1"))
    first = True
    while rest:
        command = rest.pop(0)
        if not _meet_faults(modem, "AT" + command, line if first else None):
            del rest[:]
            return
        first = False
        if not command.startswith("+"):
            _basic(modem, command.upper())
            continue
        name, op, args = _split(command[1:])
        handler = HANDLERS.get(name)
        if handler is None or op is None:
            error(modem)
        elif op == "test":
            ok(modem, *TESTS.get(name, ()))
        else:
            handler(modem, op, args)


def split_line(body):
    """The commands of a line after its AT: an extended one (+NAME...) ends at a `;` that
    is not quoted; basic ones (E0, &D1) follow each other with nothing between (a `;`
    after one is skipped too); D takes the rest of the line. `E0+CTZU=1;+CEREG?` ->
    ["E0", "+CTZU=1", "+CEREG?"]; "" -> [""] (AT alone)."""
    commands = []
    index = 0
    while index < len(body):
        char = body[index]
        end = index + 1
        if char == "+":
            quoted = False
            while end < len(body) and (quoted or body[end] != ";"):
                quoted ^= body[end] == '"'
                end += 1
        elif char in "Dd":
            end = len(body)
        elif char != ";":
            end += char == "&"
            while end < len(body) and body[end].isdigit():
                end += 1
        if char != ";":
            commands.append(body[index:end])
        index = end + (char == "+")
    return commands or [""]


def _meet_faults(modem, text, line):
    """The faults and quirks waiting for this command; line: the whole line, for the first
    command (its echo goes before it runs), else None. False when the line ends here."""
    hit = modem.faults.match_command(text)
    if hit is not None and hit[0] == "silent":
        return False
    if modem.cpin_silent and text.upper().startswith("AT+CPIN?"):
        modem.cpin_silent = False  # quirk cpin_silent_once
        return False
    if hit is not None and hit[0] in faultlib.ACTIONS:
        modem.act_on_command(*hit)
        hit = None
    elif hit is not None and hit[0] in faultlib.ANSWER_FAULTS:
        modem.truncate_next = True
        hit = None
    if line is not None and modem.echo:
        if modem.quirk("urc_before_answer"):
            modem.urc(b"SMS DONE")
        modem.write_raw(line + b"\r")
    if line is not None and modem.quirk("urc_before_answer"):
        modem.urc(b"PB DONE")
    if hit is None:
        return True
    name, params = hit
    if name == "brownout":
        modem.power_off()
    elif name == "error":
        error(modem)
    else:
        cme_error(modem, params["code"])
    return False


def _split(text):
    """`CREG?` -> ("CREG", "read", None); `CREG=1` -> ("CREG", "set", [1]); op None when
    the arguments do not parse."""
    for index, char in enumerate(text):
        if char in "=?":
            name = text[:index].upper()
            tail = text[index:]
            if tail == "?":
                return name, "read", None
            if tail == "=?":
                return name, "test", None
            if char == "=":
                args = parse_args(tail[1:])
                return name, ("set" if args is not None else None), args
            return name, None, None
    return text.upper(), "exec", None


def _basic(modem, rest):
    if rest in ("", "V1", "&W"):
        pass
    elif rest in ("E", "E0"):
        modem.echo = False
    elif rest == "E1":
        modem.echo = True
    elif rest in ("Z", "Z0"):
        modem.echo = True
        modem.cmee = 1
    elif modem.call.basic(rest):
        return
    elif rest == "I":
        ok(modem, "Manufacturer: " + IDENTITY["CGMI"], "Model: " + IDENTITY["CGMM"],
           "Revision: " + IDENTITY["CGMR"][7:], "IMEI: " + IDENTITY["CGSN"], "+GCAP: +CGSM")
        return
    else:
        error(modem)
        return
    ok(modem)


def _setting(modem, op, args, attribute, label, allowed):
    """A value read with `?` and set with `=` (AT+CMEE, AT+CSCLK ...)."""
    if op == "read":
        ok(modem, "+%s: %d" % (label, getattr(modem, attribute)))
        return
    value = int_arg(args, 0, min(allowed), max(allowed)) if op == "set" else None
    if value is None or value not in allowed or len(args) != 1:
        error(modem)
        return
    setattr(modem, attribute, value)
    ok(modem)


def _cmee(modem, op, args):
    _setting(modem, op, args, "cmee", "CMEE", (0, 1, 2))


def _csclk(modem, op, args):
    _setting(modem, op, args, "csclk", "CSCLK", (0, 1, 2))


def _cpin(modem, op, args):
    if op not in ("read", "set"):
        error(modem)
    elif modem.faults.has("no_sim"):
        cme_error(modem, 10)
    elif op == "read" and modem.cpin_failures:
        cme_error(modem, modem.cpin_failures.pop(0))  # quirk sim_failure_at_boot
        if not modem.cpin_failures:
            modem.urc(b"+CPIN: READY")  # the SIM settled
    elif op == "read":
        ok(modem, "+CPIN: READY")
    else:
        ok(modem)


def _csq(modem, op, args):
    if op != "exec":
        error(modem)
        return
    ok(modem, "+CSQ: %d,%d" % modem.csq())


def _registration(name):
    def handler(modem, op, args):
        if op == "set":
            mode = int_arg(args, 0, 0, 2)
            if mode is None or len(args) != 1:
                error(modem)
                return
            modem.reg_urc[name] = mode
            ok(modem)
            return
        if op != "read":
            error(modem)
            return
        mode, stat = modem.reg_urc[name], modem.stat()
        if modem.odd_reg_reads:  # quirk reg_unknown_first
            modem.odd_reg_reads -= 1
            stat = 4 if name == "CEREG" else 11
        line = "+%s: %d,%d" % (name, mode, stat)
        if mode == 2 and stat in (1, 5):
            line += ',"1A2B","0A1B2C3D"' + (",7" if name == "CEREG" else "")
        ok(modem, line)
    return handler


def _cgdcont(modem, op, args):
    if op == "read":
        ok(modem, *['+CGDCONT: %d,"%s","%s","0.0.0.0",0,0' % (cid, kind, apn)
                    for cid, (kind, apn) in sorted(modem.contexts.items())])
        return
    cid = int_arg(args, 0, 1, 24) if op == "set" else None
    if cid is None:
        error(modem)
        return
    if len(args) == 1:
        modem.contexts.pop(cid, None)  # AT+CGDCONT=<cid> undefines the context
        ok(modem)
        return
    kind, apn = str_arg(args, 1), args[2] if len(args) > 2 else None
    if kind not in ("IP", "IPV6", "IPV4V6") or not (apn is None or isinstance(apn, str)):
        error(modem)
        return
    modem.contexts[cid] = (kind, apn or "")
    ok(modem)


def _cgatt(modem, op, args):
    if op == "read":
        ok(modem, "+CGATT: %d" % (modem.stat() in (1, 5)))
    elif op == "set" and int_arg(args, 0, 0, 1) is not None:
        ok(modem)
    else:
        error(modem)


def _cops(modem, op, args):
    if op == "read":
        ok(modem, '+COPS: 0,0,"%s",7' % OPERATOR if modem.stat() in (1, 5) else "+COPS: 0")
    elif op == "set":
        ok(modem)
    else:
        error(modem)


def _cfun(modem, op, args):
    if op == "read":
        ok(modem, "+CFUN: %d" % modem.cfun)
        return
    value = int_arg(args, 0, 0, 4) if op == "set" else None
    if value not in (0, 1, 4):
        error(modem)
        return
    modem.cfun = value
    ok(modem)
    modem.radio_changed()


def _cpof(modem, op, args):
    if op != "exec":
        error(modem)
        return
    ok(modem)
    modem.shutdown()


def _creset(modem, op, args):
    if op != "exec":
        error(modem)
        return
    ok(modem)
    modem.restart()


def _cclk(modem, op, args):
    """The network's local time and zone (the modem's clock, set by NITZ)."""
    if op != "read":
        error(modem)
    else:
        ok(modem, '+CCLK: "%s%+03d"' % (modem.clock_stamp(ZONE_QUARTERS), ZONE_QUARTERS))


def _ctzu(modem, op, args):
    _setting(modem, op, args, "ctzu", "CTZU", (0, 1))


def _cntp(modem, op, args):
    """AT+CNTP="<server>",<zone>; AT+CNTP? reads them; AT+CNTP syncs: OK, then +CNTP: <err>
    (0 done, 4 network error: not registered, or no server set)."""
    if op == "read":
        ok(modem, '+CNTP: "%s",%d' % modem.ntp_server)
    elif op == "set" and isinstance(str_arg(args, 0), str) and int_arg(args, 1, -96, 96) is not None:
        modem.ntp_server = (str_arg(args, 0), int_arg(args, 1, -96, 96))
        ok(modem)
    elif op == "exec":
        ok(modem)
        modem.urc(b"+CNTP: %d" % (0 if modem.stat() in (1, 5) and modem.ntp_server[0] else 4))
    else:
        error(modem)


def _identity(name):
    def handler(modem, op, args):
        if op != "exec":
            error(modem)
        elif name in ("CIMI", "CICCID") and modem.faults.has("no_sim"):
            cme_error(modem, 10)
        elif name == "CIMI":
            ok(modem, IMSI)
        elif name == "CICCID":
            ok(modem, ICCID)
        else:
            ok(modem, IDENTITY[name])
    return handler


HANDLERS = {
    "CMEE": _cmee,
    "CSCLK": _csclk,
    "CPIN": _cpin,
    "CSQ": _csq,
    "CREG": _registration("CREG"),
    "CGREG": _registration("CGREG"),
    "CEREG": _registration("CEREG"),
    "CGDCONT": _cgdcont,
    "CGATT": _cgatt,
    "COPS": _cops,
    "CFUN": _cfun,
    "CPOF": _cpof,
    "CCLK": _cclk,
    "CTZU": _ctzu,
    "CNTP": _cntp,
    "CRESET": _creset,
}
for _name in ("CGMI", "CGMM", "CGMR", "CGSN", "CIMI", "CICCID"):
    HANDLERS[_name] = _identity(_name)
HANDLERS.update(tcpip.HANDLERS)
HANDLERS.update(tls.HANDLERS)
HANDLERS["CGDATA"] = lambda modem, op, args: modem.call.cgdata(op, args)
