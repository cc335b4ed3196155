"""The internal TCP/IP stack's commands (ATM ch. 11): NETOPEN, NETCLOSE, IPADDR, CIPOPEN,
CIPCLOSE, CIPSEND, CIPRXGET and the settings around them. Successes answer OK and report
the result in a URC after the model latency; failures answer at once."""

from .model import FINAL, HEADER, LATENCY_MS, LINKS, LOCAL_IP, MAX_SEND, RX_CHUNK
from .replies import INVALID, error, int_arg, ok, str_arg

NETWORK_NOT_OPENED = "+IP ERROR: Network not opened"


def _netopen(modem, op, args):
    if op == "read":
        ok(modem, "+NETOPEN: %d" % (modem.net == "open"))
    elif op != "exec" or modem.net == "closing":
        error(modem)  # NETOPEN failures answer a bare ERROR
    elif modem.net != "closed":
        error(modem, "+IP ERROR: Network is already opened")
    else:
        ok(modem)
        if modem.quirk("late_ip_error"):  # the host waits for +NETOPEN: nothing in flight
            modem.late_final(NETWORK_NOT_OPENED.encode())
            modem.after(LATENCY_MS["late_error"], modem.late_final, b"ERROR")
        modem.net = "opening"
        modem.after(LATENCY_MS["netopen"], _netopen_done, modem)


def _netopen_done(modem):
    if modem.net != "opening":
        return
    registered = modem.stat() in (1, 5)
    modem.net = "open" if registered else "closed"
    modem.urc(b"+NETOPEN: %d" % (0 if registered else 1))


def _netclose(modem, op, args):
    if op != "exec":
        error(modem)
    elif modem.net != "open":
        error(modem, "+NETCLOSE: 2")  # as a real device answers
    else:
        ok(modem)
        modem.links.close_all()
        modem.net = "closing"
        modem.after(LATENCY_MS["netclose"], _netclose_done, modem)


def _netclose_done(modem):
    if modem.net == "closing":
        modem.net = "closed"
        modem.urc(b"+NETCLOSE: 0")


def _ipaddr(modem, op, args):
    if op != "exec":
        error(modem)
    elif modem.net != "open":
        error(modem, NETWORK_NOT_OPENED)
    else:
        ok(modem, "+IPADDR: " + LOCAL_IP)


def _cipopen(modem, op, args):
    if op == "read":
        ok(modem, *modem.links.table_lines())
        return
    number = int_arg(args, 0, 0, LINKS - 1) if op == "set" else None
    kind, host, port = str_arg(args, 1), str_arg(args, 2), int_arg(args, 3, 1, 65535)
    if number is None or kind is None or not host or port is None:
        error(modem, INVALID)
    elif kind.upper() != "TCP":
        error(modem, "+IP ERROR: Operation not supported")  # only TCP is emulated
    elif modem.net != "open":
        error(modem, NETWORK_NOT_OPENED)
    elif modem.links.busy(number):
        error(modem, "+IP ERROR: Connection is already created")
    else:
        failure = modem.faults.take("open_fail")
        if failure is not None:
            error(modem, "+CIPOPEN: %d,%d" % (number, failure["err"]))
            return
        urc_first = modem.quirk("cipopen_urc_first")
        if not urc_first:
            ok(modem)
        modem.links.open(number, host, port, answer=urc_first)


def _cipclose(modem, op, args):
    if op == "read":
        flags = ",".join("1" if modem.links.busy(n) else "0" for n in range(LINKS))
        ok(modem, "+CIPCLOSE: " + flags)
        return
    number = int_arg(args, 0, 0, LINKS - 1) if op == "set" else None
    if number is None:
        error(modem, INVALID)
    elif not modem.links.closable(number):
        error(modem, "+CIPCLOSE: %d,4" % number)
    else:
        ok(modem)
        modem.links.close(number)


def _cipsend(modem, op, args):
    number = int_arg(args, 0, 0, LINKS - 1) if op == "set" else None
    length = int_arg(args, 1, 1, MAX_SEND)
    if number is None:
        error(modem, INVALID)
    elif not modem.links.is_open(number):
        error(modem, "+CIPERROR: 4")
    elif length is None or len(args) != 2:
        error(modem, INVALID)
    else:
        modem.respond(b"\r\n>")
        modem.framer.expect_payload(length, lambda data: _sent(modem, number, data))


def _sent(modem, number, data):
    modem.respond(modem.framed(b"OK", FINAL))
    requested = len(data)
    if not modem.links.is_open(number):
        confirmed = -1  # the link went away while the payload came in
    else:
        confirmed = requested // 2 if modem.faults.take("short_send") is not None else requested
        modem.links.write(number, data[:confirmed])
    result = b"+CIPSEND: %d,%d,%d" % (number, requested, confirmed)
    modem.after(LATENCY_MS["send"], modem.urc, result)


def _ciprxget(modem, op, args):
    if op == "read":
        ok(modem, "+CIPRXGET: %d" % modem.rx_manual)
        return
    mode = int_arg(args, 0, 0, 4) if op == "set" else None
    if mode in (0, 1) and len(args) == 1:
        modem.rx_manual = mode == 1
        ok(modem)
        if not modem.rx_manual:
            modem.links.push_buffered()
        return
    number = int_arg(args, 1, 0, LINKS - 1)
    if mode == 2 and number is not None and len(args) <= 3:
        length = int_arg(args, 2, 1, RX_CHUNK) if len(args) == 3 else RX_CHUNK
        if length is None:
            error(modem, INVALID)
            return
        data, rest = modem.links.read(number, length)
        if not data:
            error(modem, "+IP ERROR: No data")
            return
        head = modem.framed(b"+CIPRXGET: 2,%d,%d,%d" % (number, len(data), rest), HEADER)
        modem.respond(head + data + modem.framed(b"OK", FINAL))
    elif mode == 4 and number is not None and len(args) == 2:
        ok(modem, "+CIPRXGET: 4,%d,%d" % (number, modem.links.pending(number)))
    else:
        error(modem)  # mode 3 (hex) is not emulated


def _numbers(attribute, label, count, low, high):
    """A list of numbers set with `=` (missing ones kept) and read with `?`."""
    def handler(modem, op, args):
        values = getattr(modem, attribute)
        if op == "read":
            ok(modem, "+%s: %s" % (label, ",".join(str(v) for v in values)))
            return
        if op != "set" or len(args) > count:
            error(modem)
            return
        for index, value in enumerate(args):
            if value is not None and int_arg(args, index, low, high) is None:
                error(modem)
                return
        for index, value in enumerate(args):
            if value is not None:
                values[index] = value
        ok(modem)
    return handler


def _flag(attribute, label, allowed=(0, 1)):
    def handler(modem, op, args):
        if op == "read":
            ok(modem, "+%s: %d" % (label, getattr(modem, attribute)))
        elif op == "set" and len(args) == 1 and args[0] in allowed:
            setattr(modem, attribute, args[0])
            ok(modem)
        else:
            error(modem)
    return handler


HANDLERS = {
    "NETOPEN": _netopen,
    "NETCLOSE": _netclose,
    "IPADDR": _ipaddr,
    "CIPOPEN": _cipopen,
    "CIPCLOSE": _cipclose,
    "CIPSEND": _cipsend,
    "CIPRXGET": _ciprxget,
    "CIPCCFG": _numbers("ccfg", "CIPCCFG", 7, 0, 120000),
    "CIPTIMEOUT": _numbers("ciptimeout", "CIPTIMEOUT", 3, 0, 120000),
    "CIPSRIP": _flag("srip", "CIPSRIP"),
    "CIPHEAD": _flag("iphead", "CIPHEAD"),
    "CIPMODE": _flag("cipmode", "CIPMODE", (0,)),  # transparent mode is not emulated
    "CIPSENDMODE": _flag("cipsendmode", "CIPSENDMODE"),
}
