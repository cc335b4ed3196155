"""The exception hierarchy: every failure the library raises is one of these, of
errors_link.py's (the modem's: ModemError, AtError, SimError, RegistrationDenied,
NoSignal, NetError) or of errors_tls_ppp.py's (NoCarrier, TlsError and the TLS_* reasons),
which load with the first name asked for here, so that an MQTT client alone never pays
heap for them: `from cellmqtt.errors import AtError` works as for any other."""


class CellMqttError(Exception):
    """Base of every error raised by cellmqtt. A subclass that takes arguments names
    them in _NAMES, in the order it is called with: each becomes an attribute (a class
    attribute is the default of one left out), and _MESSAGE takes them by name. One
    __init__ for all: one each would be heap on a board."""

    _NAMES = ""
    _MESSAGE = ""

    def __init__(self, *values):
        fields = {}
        for index, name in enumerate(self._NAMES.split()):
            if index < len(values):
                setattr(self, name, values[index])
            fields[name] = getattr(self, name)
        if fields:
            values = (self._MESSAGE % fields,)
        super().__init__(*values)


class ConfigError(CellMqttError):
    """A configuration value is missing or not allowed; the message names the key."""

    key: str
    allowed: str
    _NAMES = "key allowed"
    _MESSAGE = "config %(key)s: %(allowed)s"


class Timeout(CellMqttError):
    """A bounded wait ran out."""

    what: str
    timeout_ms: int
    _NAMES = "what timeout_ms"
    _MESSAGE = "%(what)s: no answer within %(timeout_ms)d ms"


class LimitExceeded(CellMqttError):
    """A configured bound (buffer, queue, window, packet size) was hit."""

    what: str
    limit: int
    _NAMES = "what limit"
    _MESSAGE = "%(what)s exceeds its limit of %(limit)d"


class StateError(CellMqttError):
    """An operation that the current state does not allow (an illegal transition)."""

    machine: str
    state: str
    action: str
    _NAMES = "machine state action"
    _MESSAGE = "%(machine)s: cannot %(action)s while %(state)s"


class LinkClosed(CellMqttError):
    """The byte stream is closed (by us, the peer, or the network)."""

    reason = "closed"
    _NAMES = "reason"
    _MESSAGE = "link closed: %(reason)s"


class ProtocolError(CellMqttError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids (bad topic, oversized packet)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""


class MqttRefused(CellMqttError):
    """The broker refused CONNECT with a CONNACK return code 1-5."""

    code: int
    name: str
    _NAMES = "code name"
    _MESSAGE = "broker refused connection: %(name)s (code %(code)d)"


class SubscribeFailed(CellMqttError):
    """The broker answered a SUBSCRIBE with the failure code 0x80 for this filter."""

    topic_filter: str
    _NAMES = "topic_filter"
    _MESSAGE = "broker refused subscription to %(topic_filter)r (SUBACK 0x80)"


def __getattr__(name):
    if name[0] == "_":
        raise AttributeError(name)  # probes for __path__, __wrapped__ ... load nothing
    from . import errors_link

    value = getattr(errors_link, name)
    globals()[name] = value  # looked up here from now on
    return value
