"""One SSL session of the SIM7600 (AT+CCH*) as a Stream: a Link (link.py: states,
bounded buffer, URC-driven reads, close, ledger entry) whose exchanges are the CCH
ones. tls.py has the dialect and the service that owns the sessions; it routes the
session's URCs here (data_waiting(), modem_dropped())."""

from .._const import const
from ..errors import AtError, NetError, Timeout
from .link import RX_BUFFER, Link, error_name

SEND_CHUNK = const(2048)  # AT+CCHSEND takes 1-2048 bytes per command
_HANDSHAKE = const(15)
_NO_CERTS = const(19)
# the <err> names of the CCH commands by code, joined (link.error_name)
_CCH_ERRORS = ("ok|alerting state|unknown error|busy|peer closed|operation timeout|transfer failed|"
               "memory error|invalid parameter|network error|open session error|state error|"
               "create socket error|DNS lookup failed|connect socket error|handshake error|"
               "close socket error|no network|send data timeout|certificates not set")


def cch_error(code):
    return error_name(_CCH_ERRORS, code)


def tls_failed(detail):
    """TlsError(TLS_FAILED, detail). Its module (errors_tls_ppp.py, ~2 KB on 64-bit) loads
    with the first refusal, not at boot, where the heap peaks."""
    from ..errors_tls_ppp import TLS_FAILED, TlsError

    return TlsError(TLS_FAILED, detail)


def open_error(code):
    """The typed error of a +CCHOPEN <err>: TlsError for what TLS refused, NetError
    for the network and the connection under it."""
    if code == _HANDSHAKE:
        return tls_failed("+CCHOPEN err 15: the server's certificate is not signed by "
                          "the CA, expired or for another host, or ours was refused")
    if code == _NO_CERTS:
        return tls_failed("+CCHOPEN err 19: certificates not set on the modem")
    return NetError("CCHOPEN", code, cch_error(code))


class TlsSession(Link):
    """One SSL session of the modem as a Stream (read/write/close as a Link)."""

    OPEN = 'AT+CCHOPEN=%d,"%s",%d,2'
    SEND = "AT+CCHSEND=%d,%d"
    CLOSE = "AT+CCHCLOSE=%d"
    LABEL = "tls #%d %s:%d"
    send_chunk = SEND_CHUNK

    async def close(self):
        """Close the session (AT+CCHCLOSE), and the service after the last one."""
        await Link.close(self)
        await self._holder.idle()

    def _open_error(self, code):
        return open_error(code)

    def _send_failed(self, error, length):
        # +CCHSEND: <s>,<err>: 0 means the bytes went out
        return "%s (err %s)" % (cch_error(error), error) if error else None

    async def _fetch(self):
        """AT+CCHRECV: `+CCHRECV: DATA,<s>,<len>` and its bytes, then the result
        `+CCHRECV: <s>,<err>`, the data before or after the OK. The bytes are the
        answer's own payload, as a link's: a buffer of RX_BUFFER would be a block that
        large to find in the window's heap for replies of a few bytes."""
        arrivals = self._arrivals
        try:
            response = await self._exchange("AT+CCHRECV=%d,%d" % (self.number, RX_BUFFER), match=_recv_line)
        except AtError:  # an empty cache answers ERROR
            self._waiting = self._arrivals != arrivals
            return
        except Timeout:
            self.reason = "receive timed out"
            await self.close()
            raise
        if response.result is None:
            await self._fail("receive failed: " + self.reason)
        error = response.code()
        if error:
            await self._fail("receive failed: %s (err %d)" % (cch_error(error), error))
        got = response.payload_len
        self._buf = response.payload or b""  # kept until read() took it, as a link's
        self._head = 0
        self._tail = got
        self.bytes_in += got
        if got < RX_BUFFER and self._arrivals == arrivals:  # fewer than asked: the cache is empty
            self._waiting = False


def _recv_line(line):
    # the answer's lines: `+CCHRECV: DATA,<s>,<len>` (its bytes follow) and the result
    return line.startswith(b"+CCHRECV:")
