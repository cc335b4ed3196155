"""The errors of the optional transports: the TLS sessions' (the modem's and a
socket's) and the PPP data call's. Part of the exception hierarchy (errors.py, which
gives every name here), apart so that a device on the AT path never loads them."""

from .errors import CellMqttError
from .errors_link import ModemError


class NoCarrier(ModemError):
    """A data call did not connect (NO CARRIER, BUSY, NO ANSWER after ATD/ATO) or
    its carrier dropped in data mode."""

    command: str
    result: str
    _NAMES = "command result"
    _MESSAGE = "%(command)s: %(result)s"


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
