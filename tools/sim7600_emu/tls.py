"""The modem's SSL stack (ATM ch. 10, the AT+CCH* family) with real TLS (Python's ssl)
on the bridged loopback connection, and the flash file system its certificates live in.

Commands (answers byte for byte; `>` prompts as AT+CIPSEND's, `\\r\\n>`):
  AT+CCERTDOWN="<name>",<len>   name ends .pem or .der, len 1-10240: `>`, then exactly
                                len bytes, OK. AT+CCERTLIST: `+CCERTLIST: "<name>"`
                                per file, OK. AT+CCERTDELE="<name>": OK, or ERROR.
  AT+CSSLCFG="<key>",<ctx>,<v>  contexts 0-9; keys sslversion 0-4, authmode 0-3,
                                ignorelocaltime 0-1, negotiatetime 10-300, cacert,
                                clientcert, clientkey (file names), enableSNI 0-1.
                                AT+CSSLCFG? lists every context.
  AT+CCHSET=<report>[,<recv>]   report send results (+CCHSEND: <s>,<err>); receive mode
                                0 push (`+CCHRECV: DATA,<s>,<len>` and the bytes) or 1
                                manual (`+CCHEVENT: <s>,RECV EVENT` once, then AT+CCHRECV).
  AT+CCHMODE=0                  only the normal (non-transparent) mode is emulated.
  AT+CCHSTART                   OK, +CCHSTART: 0 (9 when not registered); ERROR when
                                already started. AT+CCHSTOP: `+CCHSTOP: 0` then OK, every
                                session closed; ERROR when not started.
  AT+CCHSSLCFG=<s>,<ctx>        the context session <s> (0-1) uses (default 0).
  AT+CCHOPEN=<s>,"<host>",<port>[,<type>]  type 2 TLS (default), 1 plain TCP: OK, then
                                +CCHOPEN: <s>,<err>: 0 connected, 13 a name that is not
                                loopback, 14 refused or not loopback, 5 timeout, 15 the
                                handshake failed (CA, validity, host name, client
                                certificate: the real modem does not say which; the
                                emulator logs it), 19 a certificate the context needs is
                                not set or not in the file system. ERROR when the service
                                is not started or the session is in use.
  AT+CCHOPEN?                   `+CCHOPEN: <s>,"<host>",<port>,<type>,0` or `+CCHOPEN: <s>,"",,,`.
  AT+CCHSEND=<s>,<len 1-2048>   `>`, the bytes, OK, then +CCHSEND: <s>,0 when reported.
  AT+CCHRECV=<s>[,<max>]        OK, then `+CCHRECV: DATA,<s>,<n>` and n bytes (n <= max,
                                1500 when max is 0 or left out) when any wait, then
                                `+CCHRECV: <s>,0`. AT+CCHRECV?: `+CCHRECV: LEN,<n0>,<n1>`.
  AT+CCHCLOSE=<s>               OK, then +CCHCLOSE: <s>,0. ERROR when not open.
  URC +CCH_PEER_CLOSED: <s>     the server closed; unread bytes stay readable until the
                                session number is opened again.
The TLS client checks the server against the CA file of the context (authmode 1 and 2)
and the host given to AT+CCHOPEN (its name, or its address in the certificate's IP
SANs), with the PC's clock, and speaks TLS 1.2 at most, as the SIM7600's stack does.
Files persist across power cycles and AT+CRESET (flash); a control-port RESET (a fresh
emulator) empties them. Power loss, AT+CRESET and a lost network reset every session
(RST, no URC) and stop the service; contexts and AT+CCHSET return to their defaults
at boot.
"""

from .model import FINAL, HEADER, LATENCY_MS, RX_CHUNK, URC
from .replies import error, int_arg, ok, str_arg
from .tls_sessions import CONTEXTS, ERR_NETWORK, MAX_FILE, SESSIONS

MAX_SEND = 2048      # AT+CCHSEND: 1-2048 bytes
_NUMBERS = {"sslversion": (0, 4), "authmode": (0, 3), "ignorelocaltime": (0, 1),
            "negotiatetime": (10, 300), "enableSNI": (0, 1)}
_FILES = ("cacert", "clientcert", "clientkey")


def _ccertdown(modem, op, args):
    name, length = str_arg(args, 0), int_arg(args, 1, 1, MAX_FILE)
    if op != "set" or not name or length is None or len(args) != 2 \
            or not name.lower().endswith((".pem", ".der")):
        error(modem)
        return
    modem.respond(b"\r\n>")

    def stored(data):
        modem.tls.files[name] = data
        ok(modem)

    modem.framer.expect_payload(length, stored)


def _ccertlist(modem, op, args):
    if op != "exec":
        error(modem)
        return
    ok(modem, *['+CCERTLIST: "%s"' % name for name in sorted(modem.tls.files)])


def _ccertdele(modem, op, args):
    name = str_arg(args, 0)
    if op != "set" or name not in modem.tls.files or len(args) != 1:
        error(modem)
        return
    del modem.tls.files[name]
    ok(modem)


def _csslcfg(modem, op, args):
    stack = modem.tls
    if op == "read":
        lines = []
        for ctx, config in enumerate(stack.contexts):
            lines.append('+CSSLCFG: %d,%d,%d,%d,%d,"%s","%s","%s"' % (
                ctx, config["sslversion"], config["authmode"], config["ignorelocaltime"],
                config["negotiatetime"], config["cacert"], config["clientcert"], config["clientkey"]))
        ok(modem, *lines)
        return
    key, ctx = str_arg(args, 0), int_arg(args, 1, 0, CONTEXTS - 1)
    if op != "set" or ctx is None or len(args) != 3 or (key not in _NUMBERS and key not in _FILES):
        error(modem)
        return
    if key in _FILES:
        value = str_arg(args, 2)
    else:
        value = int_arg(args, 2, *_NUMBERS[key])
    if value is None:
        error(modem)
        return
    stack.contexts[ctx][key] = value
    ok(modem)


def _cchset(modem, op, args):
    stack = modem.tls
    if op == "read":
        ok(modem, "+CCHSET: %d,%d" % (stack.report_send, stack.recv_manual))
        return
    report, recv = int_arg(args, 0, 0, 1), int_arg(args, 1, 0, 1) if args and len(args) > 1 else 0
    if op != "set" or report is None or recv is None or len(args) > 2:
        error(modem)
        return
    stack.report_send, stack.recv_manual = report, recv
    ok(modem)


def _cchmode(modem, op, args):
    if op == "read":
        ok(modem, "+CCHMODE: 0")
    elif op == "set" and args == [0]:
        ok(modem)
    else:
        error(modem)  # transparent mode is not emulated


def _cchstart(modem, op, args):
    stack = modem.tls
    if op != "exec" or stack.started:
        error(modem)
        return
    registered = modem.stat() in (1, 5)
    stack.started = registered
    ok(modem)
    modem.after(LATENCY_MS["netopen"], modem.urc, b"+CCHSTART: %d" % (0 if registered else ERR_NETWORK))


def _cchstop(modem, op, args):
    stack = modem.tls
    if op != "exec" or not stack.started:
        error(modem)
        return
    stack.stop()
    ok(modem, "+CCHSTOP: 0")


def _cchsslcfg(modem, op, args):
    session, ctx = int_arg(args, 0, 0, SESSIONS - 1), int_arg(args, 1, 0, CONTEXTS - 1)
    if op != "set" or session is None or ctx is None or len(args) != 2 or session in modem.tls.sessions:
        error(modem)
        return
    modem.tls.session_context[session] = ctx
    ok(modem)


def _cchopen(modem, op, args):
    stack = modem.tls
    if op == "read":
        lines = []
        for number in range(SESSIONS):
            session = stack.sessions.get(number)
            if session is None:
                lines.append('+CCHOPEN: %d,"",,,' % number)
            else:
                lines.append('+CCHOPEN: %d,"%s",%d,%d,0' % (number, session.host, session.port,
                                                          2 if session.secure else 1))
        ok(modem, *lines)
        return
    number = int_arg(args, 0, 0, SESSIONS - 1) if op == "set" else None
    host, port = str_arg(args, 1), int_arg(args, 2, 1, 65535)
    kind = int_arg(args, 3, 1, 2) if args is not None and len(args) > 3 else 2
    if number is None or not host or port is None or kind is None or len(args) > 5:
        error(modem)
    elif not stack.started or number in stack.sessions:
        error(modem)
    else:
        ok(modem)
        stack.open(number, host, port, kind == 2)


def _cchsend(modem, op, args):
    number = int_arg(args, 0, 0, SESSIONS - 1) if op == "set" else None
    length = int_arg(args, 1, 1, MAX_SEND)
    if number is None or length is None or len(args) != 2 or not modem.tls.is_open(number):
        error(modem)
        return
    modem.respond(b"\r\n>")
    modem.framer.expect_payload(length, lambda data: _sent(modem, number, data))


def _sent(modem, number, data):
    stack = modem.tls
    if not stack.is_open(number):
        error(modem)  # the session went away while the payload came in
        return
    stack.sessions[number].writer.write(data)
    ok(modem)
    if stack.report_send:
        modem.after(LATENCY_MS["send"], modem.urc, b"+CCHSEND: %d,0" % number)


def _cchrecv(modem, op, args):
    stack = modem.tls
    if op == "read":
        ok(modem, "+CCHRECV: LEN,%s" % ",".join(str(len(b)) for b in stack.buffers))
        return
    number = int_arg(args, 0, 0, SESSIONS - 1) if op == "set" else None
    size = int_arg(args, 1, 0, RX_CHUNK) if args is not None and len(args) > 1 else 0
    if number is None or size is None or len(args) > 2 or not stack.recv_manual \
            or (number not in stack.sessions and not stack.buffers[number]):
        error(modem)
        return
    data = stack.read(number, size or RX_CHUNK)
    answer = modem.framed(b"OK", FINAL)
    if data:
        answer += modem.framed(b"+CCHRECV: DATA,%d,%d" % (number, len(data)), HEADER) + data
    modem.respond(answer + modem.framed(b"+CCHRECV: %d,0" % number, URC))


def _cchclose(modem, op, args):
    number = int_arg(args, 0, 0, SESSIONS - 1) if op == "set" else None
    session = modem.tls.sessions.get(number)
    if number is None or len(args) != 1 or session is None or session.state == "closing":
        error(modem)
        return
    ok(modem)
    modem.tls.close(number)


HANDLERS = {
    "CCERTDOWN": _ccertdown,
    "CCERTLIST": _ccertlist,
    "CCERTDELE": _ccertdele,
    "CSSLCFG": _csslcfg,
    "CCHSET": _cchset,
    "CCHMODE": _cchmode,
    "CCHSTART": _cchstart,
    "CCHSTOP": _cchstop,
    "CCHSSLCFG": _cchsslcfg,
    "CCHOPEN": _cchopen,
    "CCHSEND": _cchsend,
    "CCHRECV": _cchrecv,
    "CCHCLOSE": _cchclose,
}
