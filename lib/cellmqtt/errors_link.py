"""The errors of the link to the broker: the modem's and TLS's. Part of the exception
hierarchy (errors.py), apart so that an MQTT client without a modem never loads them;
errors.py gives every name here too."""

from .errors import CellMqttError


class ModemError(CellMqttError):
    """The modem misbehaved or is unusable (no answer, power, SIM, network)."""


class AtError(ModemError):
    """A command ended in ERROR, +CME ERROR, +CMS ERROR, +IP ERROR or +CIPERROR;
    lines are the information lines that came before it (`+CIPOPEN: 1,3`)."""

    def __init__(self, command, kind, code=None, lines=()):
        if code is None:
            text = "%s: %s" % (command, kind)
        else:
            text = "%s: %s %s" % (command, kind, code)
        super().__init__(text)
        self.command = command
        self.kind = kind
        self.code = code
        self.lines = lines


class SimError(ModemError):
    """The SIM is not usable: not inserted, locked (SIM PIN, SIM PUK ...) or failed."""

    def __init__(self, state, code=None):
        super().__init__("SIM: %s" % state)
        self.state = state
        self.code = code


class RegistrationDenied(ModemError):
    """The network refused registration (+CREG/+CGREG/+CEREG stat 3)."""

    def __init__(self, command):
        super().__init__("registration denied (%s)" % command)
        self.command = command


class NoSignal(ModemError):
    """AT+CSQ reported 99 (no measurement): no usable cell."""


class NetError(ModemError):
    """+NETOPEN/+CIPOPEN/+CIPCLOSE/+NETCLOSE reported an <err> other than 0."""

    def __init__(self, operation, code, name):
        super().__init__("%s failed: %s (err %d)" % (operation, name, code))
        self.operation = operation
        self.code = code


class NoCarrier(ModemError):
    """A data call did not connect (NO CARRIER, BUSY, NO ANSWER after ATD/ATO) or
    its carrier dropped in data mode."""

    def __init__(self, command, result):
        super().__init__("%s: %s" % (command, result))
        self.command = command
        self.result = result


# TlsError reasons: compare error.reason with these
TLS_UNTRUSTED = "server certificate not signed by the configured CA"
TLS_EXPIRED = "server certificate expired or not yet valid"
TLS_HOST = "server certificate is for another host name"
TLS_REFUSED = "the broker refused the session (client certificate missing or not accepted)"
TLS_FAILED = "handshake failed"


class TlsError(CellMqttError):
    """A TLS session could not be set up (socket or modem path); `reason` is one of
    the TLS_* texts above, `detail` the TLS stack's own words (never key material)."""

    def __init__(self, reason, detail=""):
        super().__init__("TLS: %s (%s)" % (reason, detail) if detail else "TLS: " + reason)
        self.reason = reason
        self.detail = detail
