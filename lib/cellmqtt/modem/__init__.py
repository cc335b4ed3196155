"""The modem in layers: at_parser (sans-IO bytes -> events), at (the AT channel:
UART owner, one command in flight, URC routing), timeouts (the one table of bounds),
commands (stateless command functions on a channel), link (a TCP link as a Stream),
sim7600 (the driver) and ppp (a data call and the PPP link over it, loaded only by
the PPP transport). Importing this package touches no hardware."""

from .at import AtChannel
from .link import Link
from .sim7600 import Sim7600
from .timeouts import TIMEOUTS_MS

__all__ = ("AtChannel", "Link", "Sim7600", "TIMEOUTS_MS")
