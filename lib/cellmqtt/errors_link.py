"""The errors of the link to the broker: the modem's. Part of the exception hierarchy
(errors.py), apart so that an MQTT client without a modem never loads them; errors.py
gives every name here too, and those of errors_tls_ppp.py (TlsError, the TLS_* reasons,
NoCarrier), which load with the first of them asked for: an AT window never needs them.
The modem layer imports its errors from here: errors.py keeps each name it is asked for."""

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

    state: str
    code = None
    _NAMES = "state code"
    _MESSAGE = "SIM: %(state)s"


class RegistrationDenied(ModemError):
    """The network refused registration (+CREG/+CGREG/+CEREG stat 3)."""

    command: str
    _NAMES = "command"
    _MESSAGE = "registration denied (%(command)s)"


class NoSignal(ModemError):
    """AT+CSQ reported 99 (no measurement): no usable cell."""


class NetError(ModemError):
    """+NETOPEN/+CIPOPEN/+CIPCLOSE/+NETCLOSE reported an <err> other than 0."""

    operation: str
    code: int
    name: str
    _NAMES = "operation code name"
    _MESSAGE = "%(operation)s failed: %(name)s (err %(code)d)"


def __getattr__(name):
    from . import errors_tls_ppp  # any other name is an AttributeError there

    return getattr(errors_tls_ppp, name)
