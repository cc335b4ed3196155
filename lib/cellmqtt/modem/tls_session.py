"""One SSL session of the SIM7600 (AT+CCH*) as a Stream: a Link (link.py: states,
bounded buffer, URC-driven reads, close, ledger entry) whose AT commands are the CCH
ones. tls.py has the dialect and the service that owns the sessions; it routes the
session's URCs here (result(), data_waiting(), modem_dropped(), data_header(), data())."""

from .. import port
from .._const import const
from ..errors import TLS_FAILED, AtError, LinkClosed, ModemError, NetError, TlsError, Timeout
from .link import CLOSE_WAIT, ESTABLISHED, OPENING, Link
from .timeouts import wait_until

SEND_CHUNK = const(2048)  # AT+CCHSEND takes 1-2048 bytes per command
_HANDSHAKE = const(15)
_NO_CERTS = const(19)
CCH_ERRORS = (
    "ok", "alerting state", "unknown error", "busy", "peer closed", "operation timeout",
    "transfer failed", "memory error", "invalid parameter", "network error",
    "open session error", "state error", "create socket error", "DNS lookup failed",
    "connect socket error", "handshake error", "close socket error", "no network",
    "send data timeout", "certificates not set")


def cch_error(code):
    return CCH_ERRORS[code] if code is not None and 0 <= code < len(CCH_ERRORS) else "unknown"


def open_error(code):
    """The typed error of a +CCHOPEN <err>: TlsError for what TLS refused, NetError
    for the network and the connection under it."""
    if code == _HANDSHAKE:
        return TlsError(TLS_FAILED, "+CCHOPEN err 15: the server's certificate is not signed by "
                                    "the CA, expired or for another host, or ours was refused")
    if code == _NO_CERTS:
        return TlsError(TLS_FAILED, "+CCHOPEN err 19: certificates not set on the modem")
    return NetError("CCHOPEN", code, cch_error(code))


class TlsSession(Link):
    """One SSL session of the modem as a Stream (read/write/close as a Link)."""

    send_chunk = SEND_CHUNK
    SEND = "+CCHSEND"

    def __init__(self, service, number, host, port_number, buffer):
        super().__init__(service, number, host, port_number, buffer)
        self._recv_err = None
        self._rx_bad = False

    def __repr__(self):
        return "<TlsSession #%d %s:%d %s>" % (self.number, self.host, self.port, self.state)

    async def close(self):
        """Close the session (AT+CCHCLOSE), and the service after the last one."""
        await Link.close(self)
        await self._driver.idle()

    def result(self, kind, value):
        if kind == "recv":
            self._recv_err = value
            self._event.set()
        else:
            Link.result(self, kind, value)

    # the payload of +CCHRECV: DATA,<s>,<len>, routed here by the service

    def data_header(self, length):
        if length is None or self._buf is None or self._tail + length > len(self._buf):
            self._rx_bad = True

    def data(self, chunk):
        if self._rx_bad or self._buf is None:
            return
        end = self._tail + len(chunk)
        self._buf[self._tail:end] = chunk
        self._tail = end

    # the AT work

    async def open(self, dirty):
        channel = self._channel
        timeout_ms = channel.timeout("+CCHOPEN")
        if dirty:  # a close the modem never confirmed: make sure the session is free
            self.modem_open = True
            await self._modem_close()
        await channel.command("AT+CCHSSLCFG=%d,%d" % (self.number, self.number))
        started = port.ticks_ms()
        self.modem_open = True
        command = 'AT+CCHOPEN=%d,"%s",%d,2' % (self.number, self.host, self.port)
        try:
            response = await channel.command(command, timeout_ms=timeout_ms)
        except AtError as error:
            self._driver.take(error.lines)
            if self._open_err is not None:
                self.modem_open = False
                raise open_error(self._open_err)
            raise
        self._driver.take(response.lines)
        await wait_until(self._event, self._opened, "+CCHOPEN URC", timeout_ms, started)
        if self.state != OPENING:
            raise LinkClosed(self.reason or "closed")
        if self._open_err:
            self.modem_open = False
            raise open_error(self._open_err)
        self.state = ESTABLISHED

    async def _confirmed(self, length):
        """+CCHSEND: <s>,<err>: 0 means the bytes went out."""
        error = self._send_result
        if error:
            await self._fail("send failed: %s (err %s)" % (cch_error(error), error))
        self.bytes_out += length

    async def _fetch(self):
        channel = self._channel
        timeout_ms = channel.timeout("+CCHRECV")
        started = port.ticks_ms()
        arrivals = self._arrivals
        if self._head == self._tail:
            self._head = self._tail = 0
        before = self._tail
        room = len(self._buf) - before
        self._recv_err = None
        self._rx_bad = False
        try:
            response = await channel.command("AT+CCHRECV=%d,%d" % (self.number, room), timeout_ms=timeout_ms)
            self._driver.take(response.lines)
            await wait_until(self._event, self._received, "+CCHRECV URC", timeout_ms, started)
        except AtError as error:
            self._driver.take(error.lines)
            if not self._recv_err and self._tail == before:  # an empty cache answers ERROR
                self._waiting = self._arrivals != arrivals
                return
            await self._fail("receive failed: %s" % error)
        except Timeout:
            self.reason = "receive timed out"
            await self.close()
            raise
        if self._rx_bad:
            await self._fail("receive failed: more bytes than asked for")
        if self._recv_err:
            await self._fail("receive failed: %s (err %d)" % (cch_error(self._recv_err), self._recv_err))
        got = self._tail - before
        self.bytes_in += got
        if got < room and self._arrivals == arrivals:
            self._waiting = False

    def _received(self):
        return self._recv_err is not None or (self.state != ESTABLISHED and self.state != CLOSE_WAIT)

    async def _modem_close(self):
        channel = self._channel
        timeout_ms = channel.timeout("+CCHCLOSE")
        started = port.ticks_ms()
        self._close_err = None
        try:
            response = await channel.command("AT+CCHCLOSE=%d" % self.number, timeout_ms=timeout_ms)
            self._driver.take(response.lines)
            await wait_until(self._event, self._closed, "+CCHCLOSE URC", timeout_ms, started)
        except AtError as error:  # not open (any more): nothing to close
            self._driver.take(error.lines)
        except (Timeout, ModemError):
            self._driver.mark_dirty(self.number)
        self.modem_open = False
