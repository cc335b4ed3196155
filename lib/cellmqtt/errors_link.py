"""The errors of the link to the broker: the modem's. Part of the exception hierarchy
(errors.py), apart so that an MQTT client without a modem never loads them; errors.py
gives every name here too, and those of errors_tls_ppp.py (TlsError, the TLS_* reasons,
NoCarrier), which load with the first of them asked for: an AT window never needs them."""

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


def __getattr__(name):
    from . import errors_tls_ppp  # any other name is an AttributeError there

    return getattr(errors_tls_ppp, name)
