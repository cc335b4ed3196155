"""The modem in layers: at_parser (sans-IO bytes -> events), at (the AT channel:
UART owner, one command in flight, URC routing, the table of bounds; TLS's and PPP's
are in timeouts_tls_ppp), link (a TCP link as a Stream), sim7600 (the driver),
tls/tls_session (the modem's TLS) and ppp (a data call and the PPP link over it).
Importing this package loads none of them: on a board each module costs heap, so a
name is imported on first use (`from cellmqtt.modem import Sim7600` loads the driver
and what it needs, never TLS or PPP). Nothing here touches hardware.
"""

from .. import lazy

attached: list = [None]  # the running driver, for the REPL's netstat (the shell never imports the driver)

__getattr__ = lazy("cellmqtt.modem", {"AtChannel": "at", "Sim7600": "sim7600"})
