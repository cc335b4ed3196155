"""Answer framing and argument parsing shared by the command modules.

An answer is `\\r\\n<info>\\r\\n` (several info lines joined by CR LF) then
`\\r\\n<final>\\r\\n`, as V.250 frames them with ATV1 (Modem.framed, which the
quirks shape). With the quirks late_ip_error and two_errors the trailing ERRORs of an
+IP ERROR or +CIPERROR come late.
"""

from .model import FINAL, INFO, LATENCY_MS

# +CME ERROR texts for AT+CMEE=2 (ATM ch. 2; the driver's side: docs/modem.md, Errors).
CME_TEXT = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    13: "SIM failure",
    14: "SIM busy",
    30: "no network service",
    100: "unknown",
}
INVALID = "+IP ERROR: Invalid parameter"


def _info(modem, lines):
    if not lines:
        return b""
    return modem.framed("\r\n".join(lines).encode("latin-1"), INFO)


def ok(modem, *lines):
    """Done: the information lines, and OK unless more commands of the line are to run."""
    answer = _info(modem, lines) + (b"" if modem.framer.rest else modem.framed(b"OK", FINAL))
    if answer:
        modem.respond(answer)


def error(modem, *lines):
    """Failed: the line's final result; the rest of the line does not run."""
    del modem.framer.rest[:]
    first = lines[0] if lines else ""
    if first.startswith("+IP ERROR:") and modem.quirk("late_ip_error"):
        late = 1
    elif first.startswith("+CIPERROR:") and modem.quirk("two_errors"):
        late = 2
    else:
        modem.respond(_info(modem, lines) + modem.framed(b"ERROR", FINAL))
        return
    # the last ERROR comes late: a moment after the rest of the answer
    modem.respond(_info(modem, lines) + modem.framed(b"ERROR", FINAL) * (late - 1))
    modem.after(LATENCY_MS["late_error"], modem.late_final, b"ERROR")


def cme_error(modem, code):
    """+CME ERROR in the form AT+CMEE asks for (0: bare ERROR); as error(), it ends the line."""
    del modem.framer.rest[:]
    if modem.cmee == 0:
        error(modem)
    elif modem.cmee == 2:
        modem.respond(modem.framed(b"+CME ERROR: %s" % CME_TEXT.get(code, "unknown").encode(), FINAL))
    else:
        modem.respond(modem.framed(b"+CME ERROR: %d" % code, FINAL))


def parse_args(text):
    """`1,"IP","apn",,5` -> [1, "IP", "apn", None, 5]: quoted strings, integers and empty
    fields; None for malformed text."""
    args = []
    index = 0
    while True:
        if text.startswith('"', index):
            end = text.find('"', index + 1)
            if end < 0:
                return None
            args.append(text[index + 1:end])
            index = end + 1
        else:
            end = text.find(",", index)
            end = len(text) if end < 0 else end
            raw = text[index:end].strip()
            if raw:
                try:
                    args.append(int(raw))
                except ValueError:
                    return None
            else:
                args.append(None)
            index = end
        if index >= len(text):
            return args
        if text[index] != ",":
            return None
        index += 1


def int_arg(args, index, low, high):
    """args[index] when it is an integer within low..high, else None."""
    if args is None or index >= len(args):
        return None
    value = args[index]
    if isinstance(value, int) and low <= value <= high:
        return value
    return None


def str_arg(args, index):
    if args is None or index >= len(args) or not isinstance(args[index], str):
        return None
    return args[index]
