"""A TCP link through the SIM7600's own stack, as a Stream (port/stream.py).

Sim7600.open_link() creates it; exactly one user owns it. It holds a ledger entry
(kind LINK) and one of the modem's link numbers 0-9 until it is CLOSED:

    OPENING ---> ESTABLISHED ---> CLOSING ---> CLOSED     close(), a failed send
       |              |     |                     ^
       |              |     +---> CLOSE_WAIT -----+     +IPCLOSE with bytes unread
       +--------------+---------------------------+     +IPCLOSE, network lost,
                                                        a failed open

When the modem drops the link it is CLOSED at once: number and ledger entry are given
back in the URC handler, and read() returns what was already buffered, then raises
LinkClosed(reason). Only when the peer closed (+IPCLOSE) while its last bytes still
wait in the modem does the link stay, as CLOSE_WAIT, until read() has fetched them
(a broker's refusing CONNACK comes just before its close). close() is idempotent and
always frees the number; when the modem does not confirm, the number is marked for
an AT+CIPCLOSE before its next use.

Receive is URC-driven: `+CIPRXGET: 1,<l>` means data waits in the modem; read()
then fetches it with AT+CIPRXGET=2 (at most 1500 bytes a read) and keeps what came
until read() took it: a link holds no receive buffer between reads. No polling.

Send is coalesced once the link has a reader (the MQTT client's reader task; read()
called once): writes gather in a buffer of one send command (1500 bytes), which goes
out when full, at the next read() once no write came for "coalesce" ms or at once
after flush() (the client waits for an answer), or at close(); the buffer grows with
what is queued, so small packets never hold all 1500 bytes, and goes with its send:
between rounds a link holds none. Before any read() a write goes out at once. A send
that fails closes the link: the next write or read raises LinkClosed.
"""

import asyncio

from .. import port
from .._const import const
from ..errors import ConfigError, LimitExceeded, LinkClosed, StateError, Timeout
from ..errors_link import AtError, ModemError, NetError
from ..ledger import LINK
from .at import wait_until
from .at_parser import split_fields, to_int

OPENING = "OPENING"
ESTABLISHED = "ESTABLISHED"
CLOSE_WAIT = "CLOSE_WAIT"
CLOSING = "CLOSING"
CLOSED = "CLOSED"

SEND_CHUNK = const(1500)  # AT+CIPSEND takes 1-1500 bytes per command (ATM 11)
_GROW = const(128)  # the coalescing buffer grows in steps of this many bytes
RX_BUFFER = const(1500)  # one AT+CIPRXGET=2 or AT+CCHRECV read (1500: the parser's payload bound)


def error_name(names, code, other="unknown"):
    """The name of a code in a "|"-joined list of names; `other` past its end."""
    names = names.split("|")
    return names[code] if code is not None and 0 <= code < len(names) else other


def net_error(operation, code):
    from .code_names import NET_ERRORS  # loaded by the first error

    return NetError(operation, code, error_name(NET_ERRORS, code))


def number_for(holder, host, port_number, what):
    """The first free number of holder's slots (the driver's links, the TLS sessions) for
    a link to host:port, which must fit a command line."""
    if '"' in host or "\r" in host or "\n" in host or not 0 < port_number < 65536:
        raise ConfigError("link address", "a host without quotes or line breaks, a port 1-65535")
    slots = holder.slots
    if None not in slots:
        raise LimitExceeded(what, len(slots))
    return slots.index(None)


class Link:
    """The template of a link: open, send, receive and close are exchanges whose
    commands, result fields and errors a subclass (tls_session.TlsSession) replaces.
    Its holder (the driver, or the TLS service) has channel, ledger, slots (the links
    by number) and dirty (bit n: number n closed without the modem confirming it)."""

    OPEN = 'AT+CIPOPEN=%d,"TCP","%s",%d'
    SEND = "AT+CIPSEND=%d,%d"
    CLOSE = "AT+CIPCLOSE=%d"
    LABEL = "#%d %s:%d"  # its ledger entry
    send_chunk = SEND_CHUNK  # bytes per send command
    reason = "closed"  # why it closed, once a cause is known

    def __init__(self, holder, number, host, port, owner):
        self.number = number
        self.host = host
        self.port = port
        self.state = OPENING
        self.modem_open = False  # the modem may hold our number
        self.bytes_in = 0
        self.bytes_out = 0
        self._holder = holder
        self._channel = holder.channel
        self._event = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._buf: bytes | bytearray = b""  # the bytes of the last read: a fetch's payload (a TLS session's buffer)
        self._head = 0
        self._tail = 0
        self._waiting = False  # data arrived (an arrival notice) and the modem is not yet read empty
        self._arrivals = 0  # arrival notices seen, to spot one during a read
        self._fetched = 0  # _arrivals when the read's header came: those are in the read
        self._reading = False
        self._reader = False  # read() was called: writes are coalesced from now on
        self._out: bytearray | None = None  # the coalescing buffer (up to send_chunk bytes), made on first use
        self._queued = 0  # bytes of it not yet sent
        self._written = 0  # ticks_ms of the last write into it
        holder.slots[number] = self
        self.fd = holder.ledger.acquire(LINK, owner, self.LABEL % (number, host, port))

    # the Stream interface

    async def read(self, max_bytes):
        """Up to max_bytes received bytes; raises LinkClosed(reason) once the link
        is closed and its buffer is empty, Timeout after the "read" bound."""
        if self._reading:
            raise StateError("link #%d" % self.number, "reading", "read")
        self._reading = self._reader = True
        try:
            started = port.ticks_ms()
            while self._head == self._tail:
                if self._queued:  # it goes out once no write came for "coalesce" ms (a write or flush() wakes this)
                    while True:
                        left = self._channel.timeout("coalesce") - port.ticks_diff(port.ticks_ms(), self._written)
                        if left <= 0:
                            break
                        self._event.clear()
                        try:
                            await asyncio.wait_for(self._event.wait(), left / 1000)
                        except asyncio.TimeoutError:
                            pass
                    async with self._write_lock:
                        if self._queued:  # a full buffer may have gone out meanwhile
                            await self._push()
                    continue
                if self._waiting and (self.state == ESTABLISHED or self.state == CLOSE_WAIT):
                    await self._fetch()
                    continue
                if self.state == CLOSE_WAIT:  # drained: now it is gone
                    self._release()
                if self.state != ESTABLISHED:
                    raise LinkClosed(self.reason)
                await wait_until(self._event, self._readable, "link #%d read" % self.number,
                                 self._channel.timeout("read"), started)
            head, buf = self._head, self._buf
            n = min(max_bytes, self._tail - head)
            self._head = head + n
            if self._head == self._tail:
                self._buf = b""  # read empty: not held until the next fetch
            if n == len(buf) and type(buf) is bytes:
                return buf  # a fetch's whole payload: no copy
            return bytes(memoryview(buf)[head:head + n])
        finally:
            self._reading = False

    async def write(self, data):
        """Send all of data, in send commands of at most send_chunk bytes; coalesced
        once the link has a reader (above)."""
        view = memoryview(data)
        async with self._write_lock:
            offset = 0
            while offset < len(view):
                if self.state != ESTABLISHED:
                    raise LinkClosed(self.reason)
                if not self._reader:
                    n = min(self.send_chunk, len(view) - offset)
                    await self._send(view[offset:offset + n])
                else:
                    queued = self._queued
                    n = min(self.send_chunk - queued, len(view) - offset)
                    out = self._out
                    if out is None or len(out) < queued + n:
                        # grown in _GROW steps up to send_chunk: small packets never hold a whole send's bytes
                        grown = bytearray(min(self.send_chunk, (queued + n + _GROW - 1) // _GROW * _GROW))
                        if out is not None and queued:
                            memoryview(grown)[:queued] = memoryview(out)[:queued]
                        out = self._out = grown
                    out[queued:queued + n] = view[offset:offset + n]
                    self._queued = queued = queued + n
                    if queued == self.send_chunk:
                        await self._push()
                offset += n
            if self._queued:
                self._written = port.ticks_ms()
                self._event.set()  # the waiting read() sends it once writes pause

    def flush(self):
        """The writer waits for an answer now, so no write is coming: what is queued goes
        at the reader's next look instead of once "coalesce" ms have passed."""
        self._written = port.ticks_add(port.ticks_ms(), -self._channel.timeout("coalesce"))
        self._event.set()

    async def close(self):
        """Send what was written, close the link and give its number back; idempotent."""
        if self._queued and self.state == ESTABLISHED:
            try:
                async with self._write_lock:
                    if self._queued:
                        await self._push()
            except (LinkClosed, ModemError, Timeout):  # a failed send closed the link already
                pass
        if self.state == CLOSING or self.state == CLOSED:
            return
        self.state = CLOSING
        self._event.set()
        try:
            if self.modem_open:
                await self._modem_close()
        finally:
            self._release()

    def _push(self):
        """Awaited: send the coalescing buffer (the write lock held, something queued). A
        plain function that gives _send's coroutine: no frame of its own while it waits."""
        out, n = self._out, self._queued
        self._queued = 0
        self._out = None  # held only while writes gather: the next round makes its own
        return self._send(memoryview(out)[:n])  # type: ignore[arg-type]  # queued: it exists

    # what the driver calls

    def data_waiting(self):
        self._waiting = True
        self._arrivals += 1
        self._event.set()

    def modem_dropped(self, reason, keep_unread=False):
        """The modem no longer has this link (+IPCLOSE, network lost, modem gone).
        keep_unread: the modem still holds bytes for us (+IPCLOSE only)."""
        self.modem_open = False
        state = self.state
        if state == OPENING or state == ESTABLISHED or state == CLOSE_WAIT:
            if state != CLOSE_WAIT:
                self.reason = reason
            if keep_unread and self._waiting and state == ESTABLISHED:
                self.state = CLOSE_WAIT
            else:
                self._release()
        self._event.set()

    def _release(self):
        """Closed: the number and the ledger entry go back. Unread bytes stay readable."""
        self.state = CLOSED
        self._event.set()
        holder, number = self._holder, self.number
        if self._head == self._tail:
            self._buf = b""
        self._out = None
        self._queued = 0
        if holder.slots[number] is self:
            holder.slots[number] = None
        if self.fd is not None:
            holder.ledger.release(self.fd)
            self.fd = None

    # the AT work: each an exchange, ended early once the modem dropped the link

    def _readable(self):
        return self._head != self._tail or self._waiting or self._queued or self.state != ESTABLISHED

    def _dropped(self):
        return not self.modem_open

    def _exchange(self, command, data=None, into=None, match=None):
        """Awaited: the response, its result None when the link was dropped first. A plain
        function that gives the channel's coroutine: no frame of its own while it waits."""
        return self._channel.command(command, data=data, into=into, match=match, urc=True,
                                     stop=self._dropped)

    async def open(self, prepare=None):
        """Open on the modem (after `await prepare(number)`, when given); on any failure,
        cancellation too, closed again so that the number comes back."""
        holder, bit = self._holder, 1 << self.number
        try:
            if prepare is not None:
                await prepare(self.number)
            if holder.dirty & bit:  # a close the modem never confirmed: make sure the number is free
                holder.dirty &= ~bit
                self.modem_open = True
                await self._modem_close()
            self.modem_open = True
            response = await self._exchange(self.OPEN % (self.number, self.host, self.port))
            if self.state != OPENING or response.result is None:
                raise LinkClosed(self.reason)
            code = response.code()
            if code:
                self.modem_open = False
                raise self._open_error(code)
        except BaseException as error:
            if self.state != CLOSED:
                self.reason = "open failed: %s" % error
                await self.close()
            raise
        self.state = ESTABLISHED
        return self

    def _open_error(self, code):
        return net_error("CIPOPEN", code)

    async def _send(self, chunk):
        try:
            response = await self._exchange(self.SEND % (self.number, len(chunk)), chunk)
        except AtError as error:
            await self._fail("send refused: %s" % error)
        except Timeout:
            self.reason = "send timed out"
            await self.close()
            raise
        if response.result is None or (self.state != ESTABLISHED and self.state != CLOSE_WAIT):
            raise LinkClosed(self.reason)
        failed = self._send_failed(response.code(), len(chunk))
        if failed:
            await self._fail("send failed: " + failed)
        self.bytes_out += len(chunk)

    def _send_failed(self, confirmed, length):
        # +CIPSEND: <l>,<requested>,<confirmed>
        return None if confirmed == length else "%s of %d bytes confirmed" % (confirmed, length)

    async def _fail(self, reason):
        self.reason = reason
        await self.close()
        raise LinkClosed(reason)

    def _header(self, line):
        # the answer's header (first field 2; `+CIPRXGET: 1,<l>` is an arrival notice):
        # notices before it announced bytes this read takes, later ones new bytes
        if line.startswith(b"+CIPRXGET:") and line[10:].lstrip().startswith(b"2,"):
            self._fetched = self._arrivals
            return True
        return False

    async def _fetch(self):
        arrivals = self._arrivals
        command = "AT+CIPRXGET=2,%d,%d" % (self.number, RX_BUFFER)
        try:
            response = await self._channel.command(command, match=self._header)
        except AtError as error:
            if error.kind == "IP" and "No data" in (error.code or ""):  # read empty already
                self._waiting = self._arrivals != arrivals
                return
            await self._fail("receive failed: %s" % error)
        fields = split_fields(response.lines[0]) if response.lines else []
        rest = to_int(fields[3]) if len(fields) == 4 else None
        if rest is None or to_int(fields[2]) != response.payload_len:
            await self._fail("receive failed: bad +CIPRXGET: 2 header")
        self._buf = response.payload or b""  # kept until read() took it: no buffer held between reads
        self._head = 0
        self._tail = response.payload_len
        self.bytes_in += response.payload_len
        if rest == 0 and self._arrivals == self._fetched:
            self._waiting = False

    async def _modem_close(self):
        try:
            await self._exchange(self.CLOSE % self.number)
        except AtError:  # +CIPCLOSE: <l>,4 ERROR and the like: not open
            pass
        except (Timeout, ModemError):
            self._holder.dirty |= 1 << self.number
        self.modem_open = False
