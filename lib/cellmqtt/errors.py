"""The exception hierarchy: every failure the library raises is one of these or of
errors_link.py's (the modem's and TLS's: ModemError, AtError, SimError,
RegistrationDenied, NoSignal, NetError, NoCarrier, TlsError and the TLS_* reasons), which
load with the first name asked for here, so that an MQTT client alone never pays heap
for them: `from cellmqtt.errors import AtError` works as for any other."""


class CellMqttError(Exception):
    """Base of every error raised by cellmqtt."""


class ConfigError(CellMqttError):
    """A configuration value is missing or not allowed; the message names the key."""

    def __init__(self, key, allowed):
        super().__init__("config %s: %s" % (key, allowed))
        self.key = key


class Timeout(CellMqttError):
    """A bounded wait ran out."""

    def __init__(self, what, timeout_ms):
        super().__init__("%s: no answer within %d ms" % (what, timeout_ms))
        self.what = what
        self.timeout_ms = timeout_ms


class LimitExceeded(CellMqttError):
    """A configured bound (buffer, queue, window, packet size) was hit."""

    def __init__(self, what, limit):
        super().__init__("%s exceeds its limit of %d" % (what, limit))
        self.what = what
        self.limit = limit


class StateError(CellMqttError):
    """An operation that the current state does not allow (an illegal transition)."""

    def __init__(self, machine, state, action):
        super().__init__("%s: cannot %s while %s" % (machine, action, state))
        self.machine = machine
        self.state = state
        self.action = action


class LinkClosed(CellMqttError):
    """The byte stream is closed (by us, the peer, or the network)."""

    def __init__(self, reason="closed"):
        super().__init__("link closed: %s" % reason)
        self.reason = reason


class ProtocolError(CellMqttError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids (bad topic, oversized packet)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""


class MqttRefused(CellMqttError):
    """The broker refused CONNECT with a CONNACK return code 1-5."""

    def __init__(self, code, name):
        super().__init__("broker refused connection: %s (code %d)" % (name, code))
        self.code = code
        self.name = name


class SubscribeFailed(CellMqttError):
    """The broker answered a SUBSCRIBE with the failure code 0x80 for this filter."""

    def __init__(self, topic_filter):
        super().__init__("broker refused subscription to %r (SUBACK 0x80)" % topic_filter)
        self.topic_filter = topic_filter


def __getattr__(name):
    if name[0] == "_":
        raise AttributeError(name)  # probes for __path__, __wrapped__ ... load nothing
    from . import errors_link

    value = getattr(errors_link, name)
    globals()[name] = value  # looked up here from now on
    return value
