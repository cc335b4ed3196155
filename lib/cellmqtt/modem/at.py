"""The AT channel: one UART, one reader task, one command in flight.

How it works: the reader task feeds every byte from the UART into an AtParser and
routes its events. While a command is in flight, an information line is part of its
response when its prefix is the command's (`+CSQ:` for AT+CSQ) and, for a set
command, its first field is the command's first parameter; a counted payload after
such a line goes to the command too. Everything else is an unsolicited result code
(URC), handed to the subscribers whose prefix matches. So a `+CIPRXGET: 1,0` URC
(first field 1) is never taken for the reply to AT+CIPRXGET=2,0,... (first field 2):
the prefix-only match that trips TinyGSM cannot happen here.

Echo lines (starting with AT) are ignored, so the channel works with echo on or off.
A command that times out or is cancelled releases the lock but leaves its answer owed:
the next command first waits (bounded by "late") for that final result, which is
counted and dropped, so a late OK is never taken for the next command's answer. The
bare ERRORs that trail an +IP ERROR or +CIPERROR, the command's own or a late one, are
owed the same way, within "late" of it.

Data mode (PPP): once ATD answered CONNECT the UART carries data, not AT. The channel
then refuses commands (StateError) and hands every byte it reads to the data-mode
owner instead of the parser, or stops reading when the owner's stack reads the UART
itself (network.PPP on the board), until leave_data_mode().
"""

import asyncio

from .. import port
from .._const import const
from ..errors import AtError, LimitExceeded, ModemError, StateError, Timeout
from ..ledger import HANDLER, TASK, UART
from ..ledger import ledger as device_ledger
from .at_parser import DROPPED, FINAL, LINE, PAYLOAD, PROMPT, AtParser, final_result, text
from .timeouts import check_timeouts, command_name, wait_until

OWNER = "AT"

_READ_CHUNK = const(256)  # one UART read: within the parser's ROOM, so one feed takes it
_TO_COMMAND = const(1)


def _first_parameter(command):
    """b"2" for AT+CIPRXGET=2,0,9; None for read, test and execute forms."""
    equals = command.find("=")
    if equals < 0 or command[equals + 1:equals + 2] == "?":
        return None
    return command[equals + 1:].partition(",")[0].strip().strip('"').encode()


class Response:
    """What a command answered before OK: its information lines and its counted
    payload (written into the caller's buffer when one was given)."""

    __slots__ = ("lines", "payload", "payload_len")

    def __init__(self, lines, payload, payload_len):
        self.lines = lines
        self.payload = payload
        self.payload_len = payload_len


class AtChannel:
    def __init__(self, stream, timeouts=None, ledger=None, detail="UART"):
        self.timeouts = check_timeouts(timeouts)
        self._ledger = device_ledger if ledger is None else ledger
        self._stream = stream
        self._uart_fd = None  # the attribute exists before the entry: storing it allocates nothing
        self._parser = AtParser()
        self._lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._owed = False  # a command gave up before its final result came
        self._late = asyncio.Event()  # set when that owed result arrives
        self._subs = []
        self._task = None
        self._task_fd = None
        self._trailing_from = None  # ticks_ms of the final whose trailing ERRORs are owed
        self.closed_reason = None
        self.on_dead = None  # called with the reason once the UART is gone
        self._sink = None  # data mode: callable(bytes) that owns what the UART says
        self._paused = None  # data mode without reading: an Event that resumes the reader
        # the command in flight
        self._active = False
        self._want_prompt = False
        self._prompted = False
        self._prefix = None
        self._first = None
        self._match = None
        self._ends = None
        self._lines: list = []
        self._final = None
        self._into = None
        self._payload: bytearray | None = None
        self._got = 0
        self._overflow = False
        self._payload_to = None
        # figures for diagnostics
        self.bytes_in = 0
        self.bytes_out = 0
        self.commands = 0
        self.urcs = 0
        self.stray = 0  # finals and prompts that arrived with no command waiting
        self.handler_errors = 0
        self.last_handler_error = None
        # last: a MemoryError above leaves nothing in the ledger
        self._uart_fd = self._ledger.acquire(UART, OWNER, detail)

    def timeout(self, name):
        return self.timeouts.get(name, self.timeouts["default"])

    def start(self):
        """Start the reader task (needs a running event loop)."""
        if self._task is not None or self._stream is None:
            return
        self._task_fd = self._ledger.acquire(TASK, OWNER, "AT reader")
        try:
            self._task = asyncio.create_task(self._reader())
        except BaseException as error:  # a MemoryError: nothing may stay in the ledger
            self._ledger.release(self._task_fd)
            self._task_fd = None
            raise error

    @property
    def dropped_lines(self):
        return self._parser.dropped_lines

    # URC subscribers

    def subscribe(self, prefixes, callback, name=None):
        """callback(line, chunk) for each URC that starts with one of prefixes (bytes
        or a tuple of bytes); chunk is None for the line itself and each piece of a
        payload that follows it (+IPD). name labels the ledger entry. Returns the
        token for unsubscribe()."""
        if isinstance(prefixes, bytes):
            prefixes = (prefixes,)
        if name is None:
            name = " ".join(text(prefix) for prefix in prefixes)
        token = self._ledger.acquire(HANDLER, OWNER, "URC " + name)
        self._subs.append((token, prefixes, callback))
        return token

    def unsubscribe(self, token):
        for i in range(len(self._subs)):
            if self._subs[i][0] == token:
                del self._subs[i]
                self._ledger.release(token)
                return

    # commands

    async def command(self, command, timeout_ms=None, data=None, into=None, match=None,
                      forget_late=False, ends=None, wire=None):
        """Send one command (a str without "\\r") and return its Response once OK came.
        data: bytes to write after the `>` prompt (AT+CIPSEND). into: a writable
        buffer for a counted payload. match(line) -> bool replaces the default rule
        for which lines are the response. forget_late: if it times out, the next
        command need not wait for its answer (an AT probe, whose late OK means what the
        next probe's would). ends(line) -> bool: a line that is the command's result
        instead of a final (ATD's CONNECT or NO CARRIER); it comes back as the last of
        the response's lines. wire: bytes to send instead of the command line (the +++
        escape, which has no CR). Raises StateError in data mode, AtError (with .lines) for an error
        result, Timeout, or ModemError once the UART is gone."""
        if timeout_ms is None:
            timeout_ms = self.timeout(command_name(command))
        async with self._lock:
            self._check_alive()
            if self._sink is not None:
                raise StateError("AT channel", "in data mode", "send " + command)
            if self._owed:
                await self._collect_late()
            await self._settle()
            started = port.ticks_ms()
            self._begin(command, match, into, data is not None)
            self._ends = ends
            owed = 0  # data bytes the modem may still wait for after its prompt
            unsent = None  # the data, until its write begins
            try:
                await self._write(command.encode() + b"\r" if wire is None else wire)
                if data is not None:
                    owed = len(data)
                    unsent = data
                    await self._wait(command, timeout_ms, started, True)
                    if self._final is None:
                        unsent = None
                        await self._write(data)
                    owed = 0
                await self._wait(command, timeout_ms, started, False)
                return self._result(command)
            finally:
                held = None
                try:
                    if owed and unsent is not None and self._final is None and self.closed_reason is None:
                        held = await self._late_prompt()
                finally:
                    if self._final is None and self.closed_reason is None and not forget_late:
                        self._owed = True
                    # given up before the data went out: a modem in prompt mode takes the
                    # next `owed` bytes as data whatever they are. After its prompt they
                    # are the data (the peer gets whole packets); without one, zeros, not
                    # text it could run as a command; after an answer instead, nothing
                    pay = None
                    if owed and self.closed_reason is None:
                        if unsent is None or (not self._prompted and self._final is None):
                            pay = bytes(owed)  # no prompt yet, or the data's write cut short
                        elif self._prompted:
                            pay = unsent
                    self._end()
                    if pay is not None:
                        try:
                            await self._write(pay)
                        except ModemError:
                            pass
                if held is not None:
                    raise held

    async def _late_prompt(self):
        """Wait up to "late" for the prompt of a data command given up. A cancellation
        meanwhile (MicroPython's wait_for can deliver a second one) is held until then,
        so a modem that prompts still gets the data, and returned to be raised."""
        started = port.ticks_ms()
        held = None
        while True:
            try:
                await wait_until(self._done, self._prompted_or_final, "prompt", self.timeouts["late"], started)
                return held
            except Timeout:
                return held
            except asyncio.CancelledError as error:
                held = error

    async def _write(self, data):
        self.bytes_out += len(data)
        try:
            await self._stream.write(data)
        except OSError as error:
            raise ModemError("UART write failed: %s" % error)

    def _begin(self, command, match, into, want_prompt):
        self.commands += 1
        name = command_name(command)
        self._prefix = (name + ":").encode() if name.startswith("+") else None
        self._first = _first_parameter(command)
        self._match = match
        self._lines = []
        self._final = None
        self._into = into
        self._payload = None
        self._got = 0
        self._overflow = False
        self._want_prompt = want_prompt
        self._prompted = False
        self._done.clear()
        self._active = True

    async def _collect_late(self):
        try:
            await wait_until(self._late, self._late_collected, "late answer",
                             self.timeouts["late"], port.ticks_ms())
        except Timeout:  # it is not coming: the modem dropped it
            pass
        self._owed = False

    def _late_collected(self):
        return not self._owed or self.closed_reason is not None

    def _end(self):
        self._active = False
        self._want_prompt = False
        self._match = None
        self._ends = None
        self._into = None
        self._lines = []
        self._payload = None

    async def _wait(self, command, timeout_ms, started, for_prompt):
        check = self._prompted_or_final if for_prompt else self._finished
        await wait_until(self._done, check, command, timeout_ms, started)
        if self.closed_reason is not None:
            raise ModemError("%s: UART gone (%s)" % (command, self.closed_reason))

    def _finished(self):
        return self._final is not None or self.closed_reason is not None

    def _prompted_or_final(self):
        return self._prompted or self._finished()

    def _result(self, command):
        kind, code = final_result(self._final)
        if kind != "OK":
            raise AtError(command, kind, code, self._lines)
        if self._overflow:
            raise LimitExceeded(command + " payload", self._got)
        payload = self._payload if self._into is None else self._into
        return Response(self._lines, payload, self._got)

    async def _settle(self):
        since = self._trailing_from
        if since is None:
            return
        try:
            await wait_until(self._late, self._trailing_paid, "trailing ERROR", self.timeouts["late"], since)
        except Timeout:  # fewer came (the manual gives +CIPERROR one): they are not coming
            pass
        self._trailing_from = None
        self._parser.settle()

    def _trailing_paid(self):
        return not self._parser.trailing or self.closed_reason is not None

    def _check_alive(self):
        if self.closed_reason is not None:
            raise ModemError("AT channel closed: %s" % self.closed_reason)

    # the reader

    async def _reader(self):
        reason = "UART closed by the modem side"
        try:
            while True:
                if self._paused is not None:  # the PPP stack reads the UART itself
                    await self._paused.wait()
                    continue
                data = await self._stream.read(_READ_CHUNK)
                if not data:
                    break
                self.bytes_in += len(data)
                self._feed(data)
        except asyncio.CancelledError:
            reason = "closed"
            raise
        except OSError as error:
            reason = "UART error: %s" % error
        finally:
            self._ledger.release(self._task_fd)
            self._task_fd = None
            self._dead(reason)

    def _feed(self, data):
        parser = self._parser
        view = memoryview(data)
        while len(view):
            if self._sink is not None:  # data mode: the bytes are the owner's
                self._sink(bytes(view))
                return
            view = view[parser.feed(view):]
            event = parser.next_event()
            while event is not None:
                self._route(event[0], event[1])
                if self._sink is not None:  # CONNECT: what the parser holds is data
                    rest = parser.drain()
                    if rest:
                        self._sink(rest)
                    break
                event = parser.next_event()
        if self._trailing_from is not None and not parser.trailing:
            self._late.set()

    def _route(self, kind, value):
        if kind == LINE:
            self._payload_to = None
            if value[:2] == b"AT" or value[:2] == b"at":
                return  # echo
            if self._active and self._ends is not None and self._ends(value):
                self._lines.append(value)  # ATD's CONNECT or NO CARRIER: its result
                self._active = False
                self._final = b"OK"
                self._done.set()
                return
            if self._active and self._is_response(value):
                self._lines.append(value)
                self._payload_to = _TO_COMMAND
                return
            # kept only for the payload it announces: a URC line (+IPCLOSE after the link's
            # end) is not held until the next line comes
            self._payload_to = value if self._parser.in_payload else None
            self.urcs += 1
            self._dispatch(value, None)
        elif kind == PAYLOAD:
            if self._payload_to == _TO_COMMAND:
                if self._active:
                    self._take_payload(value)
            elif self._payload_to is not None:
                self._dispatch(self._payload_to, value)
            if not self._parser.in_payload:
                self._payload_to = None
        elif kind == FINAL:
            self._payload_to = None
            if self._parser.trailing:  # an +IP ERROR or +CIPERROR: bare ERRORs follow
                self._trailing_from = port.ticks_ms()
            if not self._active:
                self.stray += 1
                if self._owed:
                    self._owed = False
                    self._late.set()
                return
            self._active = False
            self._final = value
            self._done.set()
        elif kind == PROMPT:
            if self._active and self._want_prompt and not self._prompted:
                self._prompted = True
                self._done.set()
            else:
                self.stray += 1
        elif kind == DROPPED:
            self._payload_to = None

    def _is_response(self, line):
        if self._match is not None:
            return self._match(line)
        prefix = self._prefix
        if prefix is None or not line.startswith(prefix):
            return False
        if self._first is None:
            return True
        rest = line[len(prefix):]
        comma = rest.find(b",")
        return (rest if comma < 0 else rest[:comma]).strip() == self._first

    def _take_payload(self, chunk):
        into = self._into
        if into is None:
            if self._payload is None:
                self._payload = bytearray()
            self._payload.extend(chunk)
            self._got += len(chunk)
            return
        n = min(len(chunk), len(into) - self._got)
        if n < len(chunk):
            self._overflow = True
        if n:
            into[self._got:self._got + n] = chunk[:n] if n < len(chunk) else chunk
            self._got += n

    def _dispatch(self, line, chunk):
        for _, prefixes, callback in self._subs:
            for prefix in prefixes:
                if line.startswith(prefix):
                    try:
                        callback(line, chunk)
                    except Exception as error:  # a subscriber's bug must not stop the reader
                        self.handler_errors += 1
                        self.last_handler_error = error
                    break

    def _dead(self, reason):
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self._active = False
        self._done.set()
        self._late.set()
        if self.on_dead is not None:
            self.on_dead(reason)

    # data mode

    @property
    def stream(self):
        """The UART's Stream (the board's PPP stack takes its machine.UART)."""
        return self._stream

    @property
    def data_mode(self):
        return self._sink is not None

    def enter_data_mode(self, sink, read=True):
        """The modem said CONNECT: from now on every byte read goes to sink(bytes) and
        commands are refused, until leave_data_mode(). read=False stops reading
        altogether, for a PPP stack that reads the UART itself."""
        self._sink = sink
        if not read and self._paused is None:
            self._paused = asyncio.Event()

    def leave_data_mode(self):
        """Back to AT (after +++, a DTR drop or NO CARRIER), parsing from a clean slate."""
        self._sink = None
        self._parser.reset()
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.set()

    def power_lost(self):
        """The modem lost power (its STATUS line fell): the command in flight and every
        later one fail at once instead of waiting out their timeouts."""
        self._dead("modem lost power")

    async def close(self):
        """Stop the reader, close the UART, drop every subscription. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # it ended; why no longer matters
                pass
        if self._task_fd is not None:  # cancelled before it ever ran its finally
            self._ledger.release(self._task_fd)
            self._task_fd = None
        self._dead("closed")
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                await stream.close()
            except OSError:
                pass
        while self._subs:
            self.unsubscribe(self._subs[0][0])
        if self._uart_fd is not None:
            self._ledger.release(self._uart_fd)
            self._uart_fd = None
