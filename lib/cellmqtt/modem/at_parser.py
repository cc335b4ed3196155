"""Sans-IO parser for what a SIM7600 sends on its UART: bytes in, events out.

    parser.feed(data) -> int        copies bytes into a fixed buffer, returns how many
                                    it took (less than len(data) when it is full)
    parser.next_event() -> event    or None when more bytes are needed

After next_event() returned None, feed() takes at least ROOM bytes, so a caller that
alternates feed() and draining next_event() never stalls.

Events are (kind, value) tuples:
  (LINE, bytes)     a CR LF framed line without its terminator: an information
                    line, a URC, or a command echo (echo ends with CR only, so the
                    wire shows `AT\\r\\r\\nOK\\r\\n`; trailing CRs and spaces are
                    stripped: `OK ` is seen in the field)
  (FINAL, bytes)    a final result: OK, ERROR, +CME ERROR:, +CMS ERROR:,
                    +IP ERROR:, +CIPERROR:
  (PROMPT, None)    the `>` of AT+CIPSEND, AT+CCHSEND, AT+CCERTDOWN (no CR LF follows it)
  (PAYLOAD, bytes)  a piece of the counted payload announced by the LINE just
                    before it (`+CIPRXGET: 2,<l>,<read>,<rest>`, `+IPD<len>`,
                    `+RECEIVE,<l>,<len>` or `+CCHRECV: DATA,<s>,<len>`, with or
                    without the space); read by length, so CR LF or AT-like
                    text inside it is data
  (DROPPED, int)    a line longer than LINE_LIMIT was discarded (bytes dropped so
                    far); the parser resynchronises at the next LF

Real modems follow `+IP ERROR:` with one bare ERROR line and `+CIPERROR:` with two
(docs/modem.md, Framing): those are swallowed whenever they come (`trailing`
says how many are still owed) until the caller sets `trailing` to 0, which the
channel does once they are past due.
"""

from .._const import const

LINE = const(1)
FINAL = const(2)
PROMPT = const(3)
PAYLOAD = const(4)
DROPPED = const(5)

LINE_LIMIT = const(512)  # longest line kept: a full AT+CIPOPEN? line is < 80 bytes
BUFFER_SIZE = const(770)  # a partial line of LINE_LIMIT (+ CR CR) and ROOM more
ROOM = const(256)  # always free once drained (BUFFER_SIZE - LINE_LIMIT - 2): one UART read of the channel
PAYLOAD_LIMIT = const(1500)  # CIPRXGET=2, push headers and our CCHRECV reads: at most 1500 bytes (ATM 11)

_CR = const(13)
_LF = const(10)
_SPACE = const(32)
_GT = const(62)
_NORMAL = const(0)
_IN_PAYLOAD = const(1)
_DISCARD = const(2)


class AtParser:
    def __init__(self):
        self._buf = bytearray(BUFFER_SIZE)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._mode = _NORMAL
        self.payload_left = 0  # bytes of a counted payload, announced by the last LINE, still to come
        self._discarded = 0
        self.trailing = 0  # bare ERROR lines still owed to an +IP ERROR / +CIPERROR (a caller
        # sets it to 0 once they are past due)
        self.dropped_lines = 0  # lines over LINE_LIMIT, thrown away
        self.bad_headers = 0  # payload headers announcing more than PAYLOAD_LIMIT
        self.swallowed = 0  # ERROR lines that trailed an +IP ERROR / +CIPERROR

    def feed(self, data):
        """Take as many bytes of data as fit; returns their count."""
        free = BUFFER_SIZE - self._end
        if free < len(data) and self._start:
            self._compact()
            free = BUFFER_SIZE - self._end
        n = min(free, len(data))
        if n:
            self._view[self._end:self._end + n] = memoryview(data)[:n]
            self._end += n
        return n

    def reset(self):
        """Forget everything buffered (the modem restarted)."""
        self._start = self._end = 0
        self._mode = _NORMAL
        self.payload_left = self.trailing = 0

    def drain(self):
        """What is buffered and not yet parsed, as bytes, and forget it (the modem
        switched to data mode in the middle of a read)."""
        rest = bytes(self._view[self._start:self._end])
        self.reset()
        return rest

    def _compact(self):
        start, end = self._start, self._end
        if end > start:
            self._view[0:end - start] = self._view[start:end]
        self._start = 0
        self._end = end - start

    def next_event(self):
        buf = self._buf
        while self._start < self._end:
            start, end = self._start, self._end
            if self._mode == _IN_PAYLOAD:
                n = min(self.payload_left, end - start)
                chunk = bytes(self._view[start:start + n])
                self._start = start + n
                self.payload_left -= n
                if not self.payload_left:
                    self._mode = _NORMAL
                return (PAYLOAD, chunk)
            newline = buf.find(b"\n", start, end)
            if self._mode == _DISCARD:
                if newline < 0:
                    self._discarded += end - start
                    self._start = self._end = 0
                    return None
                self._discarded += newline - start
                self._start = newline + 1
                self._mode = _NORMAL
                continue
            first = buf[start]
            if first == _CR or first == _LF or first == _SPACE:
                self._start = start + 1
                continue
            if first == _GT:
                self._start = start + 1
                return (PROMPT, None)
            if newline < 0:
                if end - start <= LINE_LIMIT + 2:  # the line and its CR (CR CR after an echo)
                    if start:
                        self._compact()
                    return None
                self.dropped_lines += 1
                self._discarded = end - start
                self._mode = _DISCARD
                self._start = self._end = 0
                return (DROPPED, self._discarded)
            stop = newline
            while stop > start and (buf[stop - 1] == _CR or buf[stop - 1] == _SPACE):
                stop -= 1
            self._start = newline + 1
            # trailing CRs and spaces count as in the partial-line check above, so bytes arriving
            # whole or one by one give the same events
            if stop - start > LINE_LIMIT or newline - start > LINE_LIMIT + 2:
                self.dropped_lines += 1
                return (DROPPED, newline - start)
            line = bytes(self._view[start:stop])
            if line == b"OK":
                return (FINAL, line)
            if line == b"ERROR":
                if self.trailing:
                    self.trailing -= 1
                    self.swallowed += 1
                    continue
                return (FINAL, line)
            # the finals with a code; bare ERROR lines trail the first two
            if line.startswith(b"+IP ERROR:"):
                self.trailing = 1
                return (FINAL, line)
            if line.startswith(b"+CIPERROR:"):
                self.trailing = 2
                return (FINAL, line)
            if line.startswith(b"+CME ERROR:") or line.startswith(b"+CMS ERROR:"):
                return (FINAL, line)
            # the headers of a counted payload: the fields a read's answer has, its length the third
            count = 0
            if line.startswith(b"+CIPRXGET:") and line[10:].lstrip().startswith(b"2,"):
                count = 4
            elif line.startswith(b"+CCHRECV:") and line[9:].lstrip().startswith(b"DATA,"):
                count = 3  # the SSL stack's AT+CCHRECV answers DATA,<session>,<len>
            length: int | None = 0  # of the payload the line announces
            if count:
                fields = split_fields(line)
                length = to_int(fields[2]) if len(fields) == count else None
            elif line.startswith(b"+IPD"):
                length = to_int(line[4:])
            elif line.startswith(b"+RECEIVE,"):  # push mode with AT+CIPCCFG HeaderType=1
                length = to_int(line.rpartition(b",")[2])
            if length is None or length < 0 or length > PAYLOAD_LIMIT:
                self.bad_headers += 1
            elif length:
                self._mode = _IN_PAYLOAD
                self.payload_left = length
            return (LINE, line)
        self._start = self._end = 0
        return None


def final_result(line):
    """(kind, code) of a FINAL line: ("OK", None), ("ERROR", None), ("CME", 10 or
    text), ("CMS", n), ("IP", text), ("CIPERROR", n)."""
    if line == b"OK" or line == b"ERROR":
        return text(line), None
    name, _, rest = line.partition(b":")
    kind = text(name[1:].partition(b" ")[0])  # +IP ERROR -> IP
    rest = rest.strip()
    code = to_int(rest)
    return kind, text(rest) if code is None or kind == "IP" else code


def split_fields(line):
    """The comma-separated fields after `+NAME:`, surrounding quotes and spaces removed
    (`+CIPOPEN: 0,"TCP","1.2.3.4",80,-1` -> [b"0", b"TCP", b"1.2.3.4", b"80", b"-1"])."""
    colon = line.find(b":")
    if colon < 0:
        return []
    fields = line[colon + 1:].split(b",")
    for i in range(len(fields)):
        field = fields[i].strip()
        if len(field) >= 2 and field[0] == 34 and field[-1] == 34:
            field = field[1:-1]
        fields[i] = field
    return fields


def text(data):
    """bytes from the modem as str; noise that is not UTF-8 comes out as its repr."""
    try:
        return data.decode()
    except UnicodeError:
        return repr(data)


def to_int(field):
    """The integer in a field, or None when it is not one."""
    try:
        return int(field)
    except ValueError:
        return None
