"""The AT channel: one UART, one reader task, one command in flight (a Command).

How it works: the reader task feeds every byte from the UART into an AtParser and
routes its events. While a command is in flight, an information line is part of its
response when its prefix is the command's (`+CSQ:` for AT+CSQ) and, for a set
command, its first field is the command's first parameter; a counted payload after
such a line goes to the command too. Everything else is an unsolicited result code
(URC), handed to the subscribers whose prefix matches. So a `+CIPRXGET: 1,0` URC
(first field 1) is never taken for the reply to AT+CIPRXGET=2,0,... (first field 2):
the prefix-only match that trips TinyGSM cannot happen here.

An exchange (urc=True) is a command whose result comes as a line of its own name and
first field, before or after its final OK (AT+CIPOPEN=0,... -> `+CIPOPEN: 0,<err>`):
it ends with that line, and an error final after it is no error (the line says
which). stop() ends the wait early (the link went away); the result is then awaited
for "late" more, as it may still come.

Echo lines (starting with AT) are ignored, so the channel works with echo on or off.
A command that times out or is cancelled releases the lock but leaves its answer owed:
the next command first waits (bounded by "late") for that final result, which is
counted and dropped, so a late OK is never taken for the next command's answer (not
for the probes AT and ATE0 and for +++, whose late OK means what the next one's
would). The bare ERRORs that trail an +IP ERROR or +CIPERROR, the command's own or
a late one, are owed the same way, within "late" of it.

Data mode (PPP): once ATD answered CONNECT the UART carries data, not AT. The channel
then refuses commands (StateError) and hands every byte it reads to the data-mode
owner instead of the parser, or stops reading when the owner's stack reads the UART
itself (network.PPP on the board), until leave_data_mode().
"""

import asyncio
from asyncio import Event, Lock

from .. import port
from ..errors import LimitExceeded, StateError, Timeout
from ..errors_link import AtError, ModemError
from ..ledger import HANDLER, TASK, UART
from ..ledger import ledger as device_ledger
from .at_parser import FINAL, LINE, PAYLOAD, PROMPT, ROOM, AtParser, final_result, split_fields, to_int

# Every wait of the modem layer, in ms: the AT path's here, TLS's and PPP's in
# timeouts_tls_ppp.py, which loads with tls.py or ppp.py (or listed(), checking a
# configuration's names), never on the AT path. AtChannel(timeouts={...}) overrides
# entries; a command's key is its name (command_name). "manual": the max response time
# in the SIM7500/SIM7600 AT Command Manual; "ours": a bound we chose, with its reason.
TIMEOUTS_MS = {
    "default": 9000,  # manual: the max response time of most commands
    "AT": 1000,  # ours: a local answer, no network involved
    "E0": 1000,  # ours: ATE0, local
    "+CPIN": 5000,  # manual
    "+NETOPEN": 120000,  # manual: 120 s max (AT+CIPTIMEOUT), includes the +NETOPEN URC
    "+NETCLOSE": 120000,  # manual: as NETOPEN
    "+CIPOPEN": 120000,  # manual: 120 s max, includes the +CIPOPEN URC
    "+CIPSEND": 120000,  # manual: 120 s max, prompt + data + the +CIPSEND URC
    "+CIPCLOSE": 120000,  # ours, as the other socket commands: the +CIPCLOSE URC
    "+CNTP": 65000,  # ours: an NTP exchange over the network, the +CNTP URC
    "probe": 300,  # ours: AT probe interval while booting (TinyGSM: 300 ms)
    "boot": 16000,  # hardware design 3.2: UART answers 11-12 s after PWRKEY; LilyGO waits 15 s
    "sim": 10000,  # ours: +CME ERROR: 14 (SIM busy) or 13 (SIM failure) right after boot, retried this long
    "register": 60000,  # ours: registration on a weak cell; past it the cycle is lost anyway
    "requery": 5000,  # ours: registration asked again while no report came (one may be lost)
    "read": 300000,  # ours: a link read with no data at all; above any MQTT keep-alive
    "coalesce": 10,  # ours: a link's writes gathered until none came for this long (link.py)
    "late": 1000,  # ours: how long the next command waits for a given-up command's answer,
    # and for the ERROR lines that trail an +IP ERROR/+CIPERROR
}


def command_name(command):
    """The table key of a command: AT+CSQ -> "+CSQ", AT+CIPRXGET=2,0,9 -> "+CIPRXGET",
    AT -> "AT", ATE0 -> "E0"."""
    return command[2:].partition("=")[0].partition("?")[0] or "AT"


def listed(name):
    """The tables' bound of a name, or None. TLS's and PPP's names are the SSL commands'
    (+CCH..., +CCERTDOWN) and those without a +: the AT path's are all in TIMEOUTS_MS
    (but for its settings line, ATE0+..., which has a + and the default)."""
    bound = TIMEOUTS_MS.get(name)
    if bound is None and (name[:4] == "+CCH" or name == "+CCERTDOWN" or "+" not in name):
        from .timeouts_tls_ppp import TIMEOUTS_MS as tls_ppp

        bound = tls_ppp.get(name)
    return bound


def check_timeouts(overrides):
    """Unknown names and non-positive values in overrides are ConfigErrors (any +NAME
    is allowed: it sets that command's own timeout). config.py words the error: its
    code is boot-only, loaded again only for a bad table."""
    for name, value in (overrides or {}).items():
        unknown = name[:1] != "+" and listed(name) is None
        if unknown or type(value) is not int or value < 1:
            from ..config import timeout_error

            raise timeout_error(name, unknown)


async def wait_until(event, check, what, timeout_ms, started):
    """Wait until check() is true; event is set whenever it may have become true.
    Raises Timeout(what) once timeout_ms have passed since `started` (ticks_ms)."""
    while not check():
        left = timeout_ms - port.ticks_diff(port.ticks_ms(), started)
        if left <= 0:
            raise Timeout(what, timeout_ms)
        event.clear()
        try:
            await asyncio.wait_for(event.wait(), left / 1000)
        except asyncio.TimeoutError:
            pass


class Command:
    """The command in flight, then its response: the information lines, the counted
    payload after one of them (written into `into` when given; payload_len bytes),
    the final result and an exchange's result line."""

    # until the answer sets them: a class's defaults, so that a command holds only what came
    payload_len = 0
    overflow = False
    prompted = False
    final: bytes | None = None
    result: bytes | None = None

    def __init__(self, command, name, data, into, match, ends, urc):
        self.command = command
        self.prefix = (name + ":").encode() if name[:1] == "+" else None
        equals = command.find("=")
        # the first parameter of a set command (b"2" for AT+CIPRXGET=2,0,9)
        self.first = None if equals < 0 or command[equals + 1:equals + 2] == "?" else \
            command[equals + 1:].partition(",")[0].strip().strip('"').encode()
        self.data = data
        self.into = into
        self.match = match
        self.ends = ends  # ends(line): a line that is the result instead of a final (ATD's CONNECT)
        self.urc = urc
        self.lines: list = []
        self.payload = into

    def code(self):
        """The last field of the result line as an int (the error code or count)."""
        return to_int(split_fields(self.result)[-1])

    def take(self, chunk, left):
        """A piece of the counted payload, `left` bytes of it still to come."""
        into = self.payload
        got = self.payload_len
        end = got + len(chunk)
        if self.into is None and (into is None or len(into) < end):
            # the payload as it came: in one piece as it is; in more, gathered in one buffer
            # of the size its header announced (a later payload of the command extends it)
            if into is None and not left:
                self.payload = chunk
                self.payload_len = end
                return
            gathered = bytearray(end + left)
            if into is not None:
                gathered[:got] = memoryview(into)[:got]
            into = self.payload = gathered
        n = min(len(chunk), len(into) - got)
        if n < len(chunk):
            self.overflow = True
            chunk = chunk[:n]
        into[got:got + n] = chunk
        self.payload_len = got + n


class AtChannel:
    def __init__(self, stream, timeouts=None, ledger=None, detail="UART"):
        check_timeouts(timeouts)
        self.timeouts = dict(timeouts) if timeouts else {}  # the overrides only: TIMEOUTS_MS is not copied
        self._ledger = device_ledger if ledger is None else ledger
        self.stream = stream  # the UART's Stream (the board's PPP stack takes its machine.UART)
        self._uart_fd = None  # the attribute exists before the entry: storing it allocates nothing
        self.parser = AtParser()  # its figures: dropped_lines, bad_headers, swallowed
        self._lock = Lock()
        self._event = Event()  # set whenever the command in flight or an owed answer moved
        self._cmd: Command | None = None  # in flight until its answer came
        self._owed = False  # a command gave up before its final result came
        self._subs: list = []
        self._task = None
        self._task_fd = None
        self._trailing_from = None  # ticks_ms of the final whose trailing ERRORs are owed
        self._payload_to = None  # who the counted payload being read belongs to
        self.closed_reason = None
        self.on_dead = None  # called with the reason once the UART is gone
        # data mode (ppp.DataCall sets them): sink(bytes) owns what the UART says, and
        # paused, when the PPP stack reads the UART itself, is the Event that resumes the reader
        self.sink = None
        self.paused = None
        # figures for diagnostics
        self.stray = 0  # finals and prompts that arrived with no command waiting
        self.handler_errors = 0
        self.last_handler_error = None
        # last: a MemoryError above leaves nothing in the ledger
        self._uart_fd = self._ledger.acquire(UART, "AT", detail)

    def timeout(self, name):
        """The bound of a name: its override, else the tables' entry, else "default"."""
        table = self.timeouts  # every bound is 1 ms or more (check_timeouts)
        return table.get(name) or listed(name) or table.get("default") or TIMEOUTS_MS["default"]

    def start(self):
        """Start the reader task (needs a running event loop)."""
        if self._task is not None or self.stream is None:
            return
        self._task_fd = self._ledger.acquire(TASK, "AT", "AT reader")
        try:
            self._task = asyncio.create_task(self._reader())
        except BaseException as error:  # a MemoryError: nothing may stay in the ledger
            self._ledger.release(self._task_fd)
            self._task_fd = None
            raise error

    # URC subscribers

    def subscribe(self, prefixes, callback, detail="URC"):
        """callback(line, chunk) for each URC that starts with one of prefixes (a tuple
        of bytes); chunk is None for the line itself and each piece of a
        payload that follows it (+IPD). detail labels the ledger entry ("URC <whose>":
        a constant, so the entry holds no string made for it). Returns the token for
        unsubscribe()."""
        token = self._ledger.acquire(HANDLER, "AT", detail)
        self._subs.append((token, prefixes, callback))
        return token

    def unsubscribe(self, token):
        for i in range(len(self._subs)):
            if self._subs[i][0] == token:
                del self._subs[i]
                self._ledger.release(token)
                return

    # commands

    async def command(self, command, timeout_ms=None, data=None, into=None, match=None, ends=None,
                      urc=False, stop=None):
        """Send one command (a str without "\\r"; +++ goes out as it is) and return its
        Command once the final OK came (an exchange: and its result line). data: bytes
        to write after the `>` prompt (AT+CIPSEND). into: a writable buffer for a
        counted payload. match(line) -> bool replaces the default rule for which lines
        are the response. ends(line) -> bool: a line that ends the command as its
        result (ATD's CONNECT; the last of the lines). urc, stop: an exchange (above).
        Raises StateError in data mode, AtError (with .lines) for an error result,
        LimitExceeded for a payload larger than `into`, Timeout, or ModemError once
        the UART is gone."""
        name = command_name(command)
        if timeout_ms is None:
            timeout_ms = self.timeout(name)
        async with self._lock:
            if self.closed_reason is not None:
                raise ModemError("AT channel closed: %s" % self.closed_reason)
            if self.sink is not None:
                raise StateError("AT channel", "in data mode", "send " + command)
            if self._owed:
                await self._grace(self._late_paid, port.ticks_ms())
                self._owed = False
            if self._trailing_from is not None:  # fewer may come (the manual gives +CIPERROR one)
                await self._grace(self._trailing_paid, self._trailing_from)
                self._trailing_from = None
                self.parser.trailing = 0
            cmd = self._cmd = Command(command, name, data, into, match, ends, urc)
            started = port.ticks_ms()
            owed = 0  # data bytes the modem may still wait for after its prompt
            unsent = None  # the data, until its write begins
            finished, prompted = self._answered, self._prompted
            try:
                await self._write((command if command == "+++" else command + "\r").encode())
                if data is not None:
                    owed = len(data)
                    unsent = data
                    await self._wait(cmd, prompted, timeout_ms, started, stop)
                    if not cmd.prompted:
                        if cmd.final is None:  # stopped: the finally pays what the modem waits for
                            return cmd
                    elif cmd.final is None:
                        unsent = None
                        await self._write(data)
                    owed = 0
                await self._wait(cmd, finished, timeout_ms, started, stop)
                if self._cmd is cmd:  # stopped: the result may still come
                    await self._grace(finished, port.ticks_ms())
                if cmd.result is None and cmd.final is not None:
                    kind, code = final_result(cmd.final)
                    if kind != "OK":
                        raise AtError(command, kind, code, cmd.lines)
                if cmd.overflow:
                    raise LimitExceeded(command + " payload", cmd.payload_len)
                return cmd
            finally:
                held = None
                try:
                    if owed and unsent is not None and cmd.final is None and self.closed_reason is None:
                        held = await self._grace(prompted, port.ticks_ms(), True)
                finally:
                    # a probe's late OK (AT, ATE0, +++) means what the next one's would: not owed
                    probe = command == "AT" or command == "ATE0" or command == "+++"
                    if cmd.final is None and self.closed_reason is None and not probe:
                        self._owed = True
                    # given up before the data went out: a modem in prompt mode takes the
                    # next `owed` bytes as data whatever they are. After its prompt they
                    # are the data (the peer gets whole packets); without one, zeros, not
                    # text it could run as a command; after an answer instead, nothing
                    pay = None
                    if owed and self.closed_reason is None:
                        if unsent is None or (not cmd.prompted and cmd.final is None):
                            pay = bytes(owed)  # no prompt yet, or the data's write cut short
                        elif cmd.prompted:
                            pay = unsent
                    self._cmd = None
                    if pay is not None:
                        try:
                            await self._write(pay)
                        except ModemError:
                            pass
                if held is not None:
                    raise held

    # the checks of a command's waits (the lock held: the command in flight is the caller's)

    def _answered(self):
        return self._cmd is None

    def _prompted(self):
        cmd = self._cmd
        return cmd is None or cmd.prompted

    async def _wait(self, cmd, check, timeout_ms, started, stop):
        try:
            await wait_until(self._event, check if stop is None else lambda: check() or stop(), cmd.command,
                             timeout_ms, started)
        except Timeout:
            if cmd.final is None:
                raise
            raise Timeout(command_name(cmd.command) + " URC", timeout_ms)  # answered, its result never came
        if self.closed_reason is not None:  # the wait ended as the UART went
            raise ModemError("AT channel closed: %s" % self.closed_reason)

    async def _grace(self, check, since, hold=False):
        """Wait up to "late" from `since` until check(); no error when it does not come.
        hold: a cancellation meanwhile (MicroPython's wait_for can deliver a second
        one) is held until then and returned, to be raised."""
        held = None
        while True:
            try:
                await wait_until(self._event, check, "late", self.timeout("late"), since)  # its Timeout is no error
                return held
            except Timeout:
                return held
            except asyncio.CancelledError as error:
                if not hold:
                    raise
                held = error

    async def _write(self, data):
        try:
            await self.stream.write(data)
        except OSError as error:
            raise ModemError("UART write failed: %s" % error)

    def _late_paid(self):
        return not self._owed or self.closed_reason is not None

    def _trailing_paid(self):
        return not self.parser.trailing or self.closed_reason is not None

    # the reader

    async def _reader(self):
        reason = "UART closed by the modem side"
        parser = self.parser
        try:
            while True:
                if self.paused is not None:  # the PPP stack reads the UART itself
                    await self.paused.wait()
                    continue
                data = await self.stream.read(ROOM)  # one feed takes it
                if not data:
                    break
                view = memoryview(data)
                while len(view):
                    if self.sink is not None:  # data mode: the bytes are the owner's
                        self.sink(bytes(view))
                        break
                    view = view[parser.feed(view):]
                    event = parser.next_event()
                    while event is not None:
                        self._route(event[0], event[1])
                        if self.sink is not None:  # CONNECT: what the parser holds is data
                            rest = parser.drain()
                            if rest:
                                self.sink(rest)
                            break
                        event = parser.next_event()
                if self._trailing_from is not None and not parser.trailing:
                    self._event.set()
        except asyncio.CancelledError:
            reason = "closed"
            raise
        except OSError as error:
            reason = "UART error: %s" % error
        finally:
            self._ledger.release(self._task_fd)
            self._task_fd = None
            self._dead(reason)

    def _route(self, kind, value):
        cmd = self._cmd
        if kind == PAYLOAD:
            to = self._payload_to
            if to is cmd and cmd is not None:
                cmd.take(value, self.parser.payload_left)
            elif type(to) is bytes:
                self._dispatch(to, value)
            if not self.parser.payload_left:
                self._payload_to = None
            return
        self._payload_to = None
        if kind == LINE:
            if value[:2] == b"AT" or value[:2] == b"at":
                return  # echo
            if cmd is not None:
                if cmd.final is None and cmd.ends is not None and cmd.ends(value):
                    cmd.lines.append(value)  # ATD's CONNECT or NO CARRIER: its result
                    cmd.final = b"OK"
                    self._done()
                    return
                # the line carries the command's name and, for a set command, its first parameter
                prefix = cmd.prefix
                named = prefix is not None and value.startswith(prefix) and (
                    cmd.first is None or value[len(prefix):].partition(b",")[0].strip() == cmd.first)
                if cmd.match(value) if cmd.match is not None else named:
                    cmd.lines.append(value)
                    self._payload_to = cmd
                    if named and cmd.urc:
                        cmd.result = value
                        if cmd.final is not None:
                            self._done()
                    return
            # kept only for the payload it announces: a URC line (+IPCLOSE after the link's
            # end) is not held until the next line comes
            if self.parser.payload_left:
                self._payload_to = value
            self._dispatch(value, None)
            if cmd is not None:  # a URC may end an exchange's wait (stop())
                self._event.set()
        elif kind == FINAL:
            if self.parser.trailing:  # an +IP ERROR or +CIPERROR: bare ERRORs follow
                self._trailing_from = port.ticks_ms()
            if cmd is None or cmd.final is not None:
                self.stray += 1
                if self._owed:
                    self._owed = False
                    self._event.set()
                return
            cmd.final = value
            if not cmd.urc or cmd.result is not None or value != b"OK":
                self._done()
            else:
                self._event.set()
        elif kind == PROMPT:
            if cmd is not None and cmd.data is not None and not cmd.prompted:
                cmd.prompted = True
                self._event.set()
            else:
                self.stray += 1

    def _done(self):
        self._cmd = None
        self._event.set()

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
        self._done()
        if self.on_dead is not None:
            self.on_dead(reason)

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
        stream, self.stream = self.stream, None
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
