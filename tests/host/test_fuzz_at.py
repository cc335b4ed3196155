# Property tests of the AT parser and channel (hypothesis, CPython only). Whatever the
# UART delivers (random bytes, valid lines mixed with garbage, truncated, overlong and
# mutated transcripts), the parser yields well-formed events of the documented kinds,
# raises nothing but typed errors, stays inside its fixed buffer, gives the same events
# however the bytes were split, and parses a clean answer right after the garbage. The
# channel never hands a command a line or payload that belongs to a URC.
import asyncio
import gc
import random
import tracemalloc

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cellmqtt.errors import CellMqttError
from cellmqtt.ledger import Ledger
from cellmqtt.modem.at_parser import (
    BUFFER_SIZE, DROPPED, FINAL, LINE, LINE_LIMIT, PAYLOAD, PAYLOAD_LIMIT, PROMPT, ROOM, AtParser, split_fields,
    to_int)
from modem_fakes import FakeModem, channel_with, framed, ok, rxget_reply

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = (LINE, FINAL, PROMPT, PAYLOAD, DROPPED)
FINAL_PREFIXES = (b"+CME ERROR:", b"+CMS ERROR:", b"+IP ERROR:", b"+CIPERROR:")

# Real exchanges, byte for byte (docs/modem.md and the unit tests' samples).
TRANSCRIPTS = [
    b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n",
    b"AT\r\r\nOK\r\n",
    b"AT+CSQ\r\r\n+CSQ: 5,0\r\n\r\nOK\r\n",
    b"\r\n+CME ERROR: 10\r\n",
    b"\r\n+CME ERROR: SIM busy\r\n",
    b"\r\n+CMS ERROR: 500\r\n",
    b"\r\n+CIPERROR: 4\r\n\r\nERROR\r\n\r\nERROR\r\n",
    b"\r\n+IP ERROR: Network is already opened\r\n\r\nERROR\r\n",
    b"AT+CIPSEND=0,5\r\r\n>",
    b"\r\n+CIPRXGET: 1,1\r\n\r\n>",
    rxget_reply(0, b"ab\r\nOK\r\n+IPCLOSE: 0,1\r\n>\r\nERROR\r\nxyz"),
    rxget_reply(3, bytes(range(256)) + b"\r\n\r\n", 12),
    b"\r\nRECV FROM:1.2.3.4:1883\r\n+IPD5\r\nOK\r\n>\r\n+CSQ: 1,1\r\n",
    b"\r\n+RECEIVE,1,4\r\n\r\nOK\r\n\r\nOK\r\n",
    b"\x00\xff\xfe\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n+CHTTPSOPSE:13\r\n",
    ok() + framed(b"+NETOPEN: 0"),
    ok(b"+IPADDR: 10.71.155.118"),
    ok() + framed(b"+CIPOPEN: 0,0"),
    ok() + framed(b"+CIPSEND: 0,5,5"),
    ok() + framed(b"+CIPCLOSE: 0,0"),
    ok() + framed(b"+NETCLOSE: 0"),
    framed(b"+IPCLOSE: 0,1", b"+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY", b"+CREG: 0"),
    b"\r\n+CIPRXGET: 2,0,0,0\r\n\r\nOK\r\n",
    b"\r\n+CIPRXGET: 2,0,99999,0\r\n\r\nOK\r\n",
]

# building blocks of mixtures
_LINES = [b"OK", b"ERROR", b"+CME ERROR: 10", b"+CMS ERROR: 500", b"+IP ERROR: No data", b"+CIPERROR: 4",
          b"+CSQ: 20,99", b"RDY", b"+CPIN: READY", b"+CIPRXGET: 1,0", b"+IPCLOSE: 0,1", b"+NETOPEN: 0",
          b"+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY", b"RECV FROM:127.0.0.1:1883", b"+CIPRXGET: 2,0", b"+IPD",
          b"+IPD-3", b"+IPDx", b"+RECEIVE,0", b"+CIPRXGET: 2,0,1501,0", b"+IPD99999", b"AT+CSQ", b"  OK"]
_ENDS = [b"\r\n", b"\n", b"\r\r\n", b"\r", b"", b"\r\r\r\n", b"\r" * 40 + b"\n"]
_TOKENS = [b"\r", b"\n", b"\r\n", b">", b"+", b":", b",", b" ", b"0", b"5", b"9", b"OK", b"ERROR", b"+CIPRXGET: 2,",
           b"+IPD", b"+RECEIVE,", b"+CME ERROR:", b"+CIPERROR:", b"\x00", b"\xff", b"AT"]

_ends = st.sampled_from(_ENDS)
_line_piece = st.builds(lambda head, line, end: head + line + end,
                        st.sampled_from([b"", b"\r\n"]), st.sampled_from(_LINES), _ends)
_prompt = st.sampled_from([b"\r\n>", b"\r\n> ", b">", b"AT+CIPSEND=0,5\r\r\n>"])
_small_data = st.binary(max_size=40)
_big_data = st.binary(min_size=BUFFER_SIZE - 30, max_size=PAYLOAD_LIMIT)


def _payload_piece(form, data, lie):
    """A counted payload with its header; `lie` makes the header announce more (the
    stream is cut short) or less (the rest reads as lines) than follows."""
    size = max(0, len(data) + lie)
    if form == 0:
        header = b"+CIPRXGET: 2,0,%d,0" % size
    elif form == 1:
        header = b"+IPD%d" % size
    else:
        header = b"+RECEIVE,0,%d" % size
    return b"\r\n" + header + b"\r\n" + data


_payload = st.builds(_payload_piece, st.integers(0, 2), st.one_of(_small_data, _small_data, _big_data),
                     st.sampled_from([0, 0, 0, 1, -1, 7, -7, 2000]))
_garbage = st.one_of(st.binary(max_size=80), st.lists(st.sampled_from(_TOKENS), max_size=30).map(b"".join))
_truncated = st.builds(lambda text, cut: text[:cut % (len(text) + 1)], st.sampled_from(TRANSCRIPTS),
                       st.integers(0, 10 ** 6))
# lines around the limit, with every kind of end (CR runs included)
_long = st.builds(lambda size, fill, end: b"\r\n" + fill * size + end,
                  st.one_of(st.integers(LINE_LIMIT - 40, LINE_LIMIT + 3), st.integers(LINE_LIMIT, LINE_LIMIT * 3)),
                  st.sampled_from([b"x", b"7", b"\xff"]), _ends)
_piece = st.one_of(st.sampled_from(TRANSCRIPTS), _line_piece, _prompt, _payload, _garbage, _truncated, _long)
mixtures = st.lists(_piece, max_size=12).map(b"".join)


def _mutate(pieces, edits):
    data = bytearray(b"".join(pieces))
    for where, how, value in edits:
        if not data:
            data.append(value)
            continue
        index = where % len(data)
        if how == 0:
            data[index] ^= value or 1
        elif how == 1:
            data.insert(index, value)
        else:
            del data[index]
    return bytes(data)


mutated = st.builds(_mutate, st.lists(st.sampled_from(TRANSCRIPTS), min_size=1, max_size=6),
                    st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 2), st.integers(0, 255)),
                             min_size=1, max_size=8))
streams = st.one_of(st.binary(max_size=2000), mixtures, mutated)
chunks = st.sampled_from([None, 1, 2, 7, 64, 300])


def _announced(line):
    """The payload length a LINE announces under the documented header rules (0: none)."""
    for name, first, count in ((b"+CIPRXGET:", b"2,", 4), (b"+CCHRECV:", b"DATA,", 3)):
        if line.startswith(name) and line[len(name):].lstrip().startswith(first):  # any spacing
            fields = split_fields(line)
            size = to_int(fields[2]) if len(fields) == count else None
            return size if size is not None and 0 < size <= PAYLOAD_LIMIT else 0
    if line.startswith(b"+IPD"):
        size = to_int(line[4:])
    elif line.startswith(b"+RECEIVE,"):
        size = to_int(line.rpartition(b",")[2])
    else:
        return 0
    return size if size is not None and 0 < size <= PAYLOAD_LIMIT else 0


class Checker:
    """Checks each event as it comes and keeps the payload still owed by a header."""

    def __init__(self):
        self.pending = 0
        self.events = []

    def take(self, event):
        assert type(event) is tuple and len(event) == 2 and event[0] in KINDS, event
        kind, value = event
        self.events.append(event)
        if kind == PAYLOAD:
            assert type(value) is bytes and 0 < len(value) <= self.pending, (len(value), self.pending)
            self.pending -= len(value)
            return
        assert self.pending == 0, ("a payload was interrupted", event)
        if kind == PROMPT:
            assert value is None
        elif kind == DROPPED:
            assert type(value) is int and value > LINE_LIMIT, value
        else:
            assert type(value) is bytes and 0 < len(value) <= LINE_LIMIT, value
            assert b"\n" not in value and not value.endswith(b"\r") and value[0] not in b"\r\n >", value
            final = value in (b"OK", b"ERROR") or value.startswith(FINAL_PREFIXES)
            assert final == (kind == FINAL), event
            if kind == LINE:
                self.pending = _announced(value)


def _check_buffer(parser, buffer):
    assert parser._buf is buffer and len(buffer) == BUFFER_SIZE
    assert 0 <= parser._start <= parser._end <= BUFFER_SIZE
    assert 0 <= parser.payload_left <= PAYLOAD_LIMIT


def drive(parser, data, chunk, checker):
    """Feed data in pieces of `chunk` (None: as much as fits), draining events after
    each feed as the channel does. Returns the typed error that stopped it, or None."""
    buffer = parser._buf
    view = memoryview(data)
    step = len(data) if chunk is None else chunk
    try:
        while len(view):
            piece, view = view[:step], view[step:]
            while len(piece):
                taken = parser.feed(piece)
                # the parser was drained, so ROOM bytes at least are free: no stall
                assert min(len(piece), ROOM) <= taken <= len(piece), (taken, len(piece))
                piece = piece[taken:]
                _check_buffer(parser, buffer)
                event = parser.next_event()
                while event is not None:
                    checker.take(event)
                    _check_buffer(parser, buffer)
                    event = parser.next_event()
                _check_buffer(parser, buffer)
                assert BUFFER_SIZE - (parser._end - parser._start) >= ROOM
    except CellMqttError as error:
        return error
    return None


def _merged(events):
    """Events with payload pieces joined and DROPPED counts blanked: both depend on
    how the bytes were split (DROPPED counts what was dropped so far)."""
    out = []
    for kind, value in events:
        if kind == PAYLOAD and out and out[-1][0] == PAYLOAD:
            out[-1] = (PAYLOAD, out[-1][1] + value)
        else:
            out.append((kind, None if kind == DROPPED else value))
    return out


def _events(data, chunk):
    checker = Checker()
    assert drive(AtParser(), data, chunk, checker) is None
    return _merged(checker.events)


@SETTINGS
@given(streams, chunks)
@example(b"+CIPRXGET:2,,1,\n\x00", 2)  # a header without the space owes its payload too
def test_any_input_gives_well_formed_events_inside_the_buffer(data, chunk):
    parser = AtParser()
    error = drive(parser, data, chunk, Checker())
    assert error is None or isinstance(error, CellMqttError)
    assert parser.dropped_lines >= 0 and parser.bad_headers >= 0 and parser.swallowed >= 0


@SETTINGS
@given(streams, st.sampled_from([2, 7, 300]))
@example(b"\r\n" + b"x" * LINE_LIMIT + b"\r\r\r\n", 300)  # see the test below
def test_byte_by_byte_and_whole_give_the_same_events(data, chunk):
    whole = _events(data, None)
    assert _events(data, 1) == whole
    assert _events(data, chunk) == whole


def test_a_line_at_the_limit_ending_in_three_crs_is_the_same_whole_or_byte_by_byte():
    # The smallest case the property above finds: a line of LINE_LIMIT bytes ended by
    # CR CR CR LF is kept when it arrives whole and dropped when it arrives byte by byte.
    wire = b"\r\n" + b"x" * LINE_LIMIT + b"\r\r\r\n\r\nOK\r\n"
    assert _events(wire, 1) == _events(wire, None)


@SETTINGS
@given(streams, st.binary(min_size=5, max_size=5), chunks)
def test_a_clean_answer_after_any_garbage_parses_exactly(garbage, data, chunk):
    parser = AtParser()
    checker = Checker()
    if drive(parser, garbage, chunk, checker) is not None:
        parser.reset()  # what the channel does after an error
        checker.pending = 0
    # end a partial line, and pay the payload a header in the garbage may still be owed
    assert drive(parser, b"\r\n", chunk, checker) is None
    if checker.pending:
        assert drive(parser, bytes(checker.pending), chunk, checker) is None
    assert checker.pending == 0
    answers = [
        (b"\r\nOK\r\n", [(FINAL, b"OK")]),
        (b"\r\n+CIPRXGET: 2,0,5,0\r\n" + data + b"\r\nOK\r\n",
         [(LINE, b"+CIPRXGET: 2,0,5,0"), (PAYLOAD, data), (FINAL, b"OK")]),
        (b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n", [(LINE, b"+CSQ: 20,99"), (FINAL, b"OK")]),
        (b"\r\n>", [(PROMPT, None)]),
    ]
    for wire, expected in answers:
        checker.events = []
        assert drive(parser, wire, chunk, checker) is None
        assert _merged(checker.events) == expected, (wire, checker.events)
    parser.trailing = 0  # the line went quiet: a bare ERROR is a final again
    checker.events = []
    assert drive(parser, b"\r\nERROR\r\n", chunk, checker) is None
    assert checker.events == [(FINAL, b"ERROR")]


def _noise(rng, size):
    """About `size` bytes of everything at once: transcripts, payloads with honest and
    lying headers, overlong lines, random bytes."""
    out = bytearray()
    while len(out) < size:
        pick = rng.randrange(6)
        if pick == 0:
            out += rng.choice(TRANSCRIPTS)
        elif pick == 1:
            data = rng.randbytes(rng.randrange(1, PAYLOAD_LIMIT))
            out += _payload_piece(rng.randrange(3), data, rng.choice([0, 0, 5, -5]))
        elif pick == 2:
            out += b"\r\n" + b"y" * rng.randrange(LINE_LIMIT, 3 * LINE_LIMIT) + rng.choice(_ENDS)
        elif pick == 3:
            out += rng.randbytes(rng.randrange(1, 200))
        else:
            out += b"".join(rng.choice(_TOKENS) for _ in range(rng.randrange(1, 60)))
    return bytes(out[:size])


def _feed_quietly(parser, data, step):
    view = memoryview(data)
    count = 0
    while len(view):
        piece, view = view[:step], view[step:]
        while len(piece):
            piece = piece[parser.feed(piece):]
            while parser.next_event() is not None:
                count += 1
    return count


def test_feeding_noise_keeps_memory_flat():
    noise = _noise(random.Random(7600), 100_000)
    parser = AtParser()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        assert _feed_quietly(parser, noise, 256) > 300  # the noise made the parser work
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for step in (1, 256, 4096, 100_000, 256):
            _feed_quietly(parser, noise, step)
        peak = tracemalloc.get_traced_memory()[1]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if started:
            tracemalloc.stop()
    assert after - before < 1024, after - before
    # while it works it holds at most a few events and the slices of one feed
    assert peak - before < 3 * PAYLOAD_LIMIT + 2048, peak - before
    assert len(parser._buf) == BUFFER_SIZE


# The channel: URC noise before, inside and after each response, and pushed between
# commands, never reaches a command; every URC reaches its subscriber whole.

URCS = [b"+CIPRXGET: 1,0", b"+CIPRXGET: 1,3", b"+IPCLOSE: 0,1", b"+IPCLOSE: 1,2", b"RDY",
        b"+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY"]
URC_PREFIXES = (b"+CIPRXGET:", b"+IPCLOSE:", b"+CIPEVENT:", b"RDY", b"RECV FROM:", b"+IPD")
_push = st.binary(min_size=1, max_size=24)
_urc = st.one_of(st.sampled_from(URCS).map(lambda line: (line, b"")),
                 st.builds(lambda data: (b"+IPD%d" % len(data), data), st.one_of(_push, st.just(b"\r\nOK\r\n"))))
_noise_list = st.lists(_urc, max_size=3)
_command = st.tuples(st.sampled_from(["csq", "rxget", "rxlen", "send", "at"]), _small_data)


def _wire_of(noise):
    out = b""
    for line, data in noise:
        if data:
            out += framed(b"RECV FROM:127.0.0.1:1883") + b"\r\n" + line + b"\r\n" + data
        else:
            out += framed(line)
    return out


def _expected_urcs(noise):
    out = []
    for line, data in noise:
        if data:
            out.append((b"RECV FROM:127.0.0.1:1883", b""))
        out.append((line, data))
    return out


def _script(fake, name, data, before, inside):
    """Script one command with URC noise before and inside its answer; returns the
    channel call and the lines and payload it must return."""
    pre, mid = _wire_of(before), _wire_of(inside)
    if name == "csq":
        fake.expect(b"AT+CSQ", pre + framed(b"+CSQ: 20,99") + mid + ok())
        return ("AT+CSQ", None), [b"+CSQ: 20,99"], None
    if name == "rxget":
        header = b"+CIPRXGET: 2,0,%d,0" % len(data)
        payload = (b"\r\n" + header + b"\r\n" + data) if data else framed(header)
        fake.expect(b"AT+CIPRXGET=2,0,1500", pre + payload + mid + ok())
        return ("AT+CIPRXGET=2,0,1500", None), [header], (data or None)
    if name == "rxlen":
        fake.expect(b"AT+CIPRXGET=4,0", pre + framed(b"+CIPRXGET: 4,0,%d" % len(data)) + mid + ok())
        return ("AT+CIPRXGET=4,0", None), [b"+CIPRXGET: 4,0,%d" % len(data)], None
    if name == "send":
        data = data or b"x"  # a send has at least one byte
        command = b"AT+CIPSEND=0,%d" % len(data)
        fake.expect(command, pre + b"\r\n>")
        fake.expect_data(data, mid + ok())
        return (command.decode(), data), [], None
    fake.expect(b"AT", pre + mid + ok())
    return ("AT", None), [], None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_command, _noise_list, _noise_list, _noise_list), min_size=1, max_size=5),
       st.sampled_from([None, 1, 7]))
def test_urc_noise_never_becomes_a_commands_response(steps, chunk):
    book = Ledger()

    async def main():
        fake = FakeModem(chunk)
        channel = channel_with(fake, book)
        seen = []

        def on_urc(line, piece):
            if piece is None:
                seen.append([line, b""])
            else:
                seen[-1][1] += bytes(piece)

        channel.subscribe(URC_PREFIXES, on_urc, "noise")
        expected_urcs = []
        try:
            for (name, data), before, inside, between in steps:
                call, lines, payload = _script(fake, name, data, before, inside)
                response = await channel.command(call[0], data=call[1])
                assert response.lines == lines, (call, response.lines)
                got = None if response.payload is None else bytes(response.payload)
                assert got == payload, (call, got)
                # URCs pushed between commands: the next command may already be waiting
                fake.push(_wire_of(between))
                expected_urcs += _expected_urcs(before) + _expected_urcs(inside) + _expected_urcs(between)
            fake.expect(b"AT+CSQ", ok(b"+CSQ: 1,1"))  # its answer comes after all the noise
            assert (await channel.command("AT+CSQ")).lines == [b"+CSQ: 1,1"]
            assert [tuple(item) for item in seen] == expected_urcs
            assert channel.stray == 0 and channel.handler_errors == 0
            assert fake.done(), fake.leftover()
        finally:
            await channel.close()

    asyncio.run(main())
    assert len(book) == 0, book.entries()
