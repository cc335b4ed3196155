"""The one state machine of an MQTT client connection.

How it works: one state variable and a table of legal moves (state, action) -> next
state. A move missing from the table is an illegal transition and raises
StateError, so for instance nothing can reconnect while a disconnect runs.

    CLOSED --connect--> CONNECTING --accepted--> CONNECTED
    CONNECTING/CONNECTED --fail--> ERROR --down--> DISCONNECTED
    CONNECTING/CONNECTED/ERROR --disconnect--> DISCONNECTING --down--> CLOSED
    DISCONNECTED --connect|reconnect--> CONNECTING

CLOSED means the application chose to be offline (the initial state too); only the
application may connect from there. DISCONNECTED means the link was lost; a
reconnect policy may use `reconnect` from there, and only from there.
"""

from ..errors import StateError

# states
CLOSED = "closed"
CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTING = "disconnecting"
ERROR = "error"
DISCONNECTED = "disconnected"

# actions
CONNECT = "connect"
RECONNECT = "reconnect"
ACCEPTED = "accepted"
FAIL = "fail"
DISCONNECT = "disconnect"
DOWN = "down"

_MOVES = {
    (CLOSED, CONNECT): CONNECTING,
    (DISCONNECTED, CONNECT): CONNECTING,
    (DISCONNECTED, RECONNECT): CONNECTING,
    (CONNECTING, ACCEPTED): CONNECTED,
    (CONNECTING, FAIL): ERROR,
    (CONNECTED, FAIL): ERROR,
    (ERROR, FAIL): ERROR,
    (DISCONNECTING, FAIL): DISCONNECTING,
    (CONNECTING, DISCONNECT): DISCONNECTING,
    (CONNECTED, DISCONNECT): DISCONNECTING,
    (ERROR, DISCONNECT): DISCONNECTING,
    (DISCONNECTING, DISCONNECT): DISCONNECTING,
    (DISCONNECTED, DISCONNECT): CLOSED,
    (CLOSED, DISCONNECT): CLOSED,
    (ERROR, DOWN): DISCONNECTED,
    (DISCONNECTING, DOWN): CLOSED,
}


class Machine:
    def __init__(self, name="mqtt"):
        self.name = name
        self.state = CLOSED

    def move(self, action):
        """Apply an action; returns the new state or raises StateError."""
        following = _MOVES.get((self.state, action))
        if following is None:
            raise StateError(self.name, self.state, action)
        self.state = following
        return following

    def allows(self, action):
        return (self.state, action) in _MOVES

    def require(self, state, action):
        """StateError unless the machine is in `state` (for actions that keep it)."""
        if self.state != state:
            raise StateError(self.name, self.state, action)
