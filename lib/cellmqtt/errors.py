"""The exception hierarchy: every failure the library raises is one of these."""


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


class LinkClosed(CellMqttError):
    """The byte stream is closed (by us, the peer, or the network)."""

    def __init__(self, reason="closed"):
        super().__init__("link closed: %s" % reason)
        self.reason = reason


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
