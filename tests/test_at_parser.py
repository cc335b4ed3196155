from cellmqtt.modem.at_parser import (
    BUFFER_SIZE, DROPPED, FINAL, LINE, LINE_LIMIT, PAYLOAD, PAYLOAD_LIMIT, PROMPT, ROOM, AtParser, final_result,
    split_fields, to_int)
from parser_events import events_of


def check(data, expected):
    # every sample: whole, byte by byte, odd pieces, and followed by trailing data
    for chunk in (None, 1, 3, 7):
        assert events_of(data, chunk) == expected, (chunk, events_of(data, chunk))
    trailing = events_of(data + b"\r\n+CSQ: 1", 1)
    assert trailing == expected, trailing


def test_echo_off_response():
    check(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n", [(LINE, b"+CSQ: 20,99"), (FINAL, b"OK")])


def test_echo_on_ends_with_cr_only():
    check(b"AT\r\r\nOK\r\n", [(LINE, b"AT"), (FINAL, b"OK")])
    check(b"AT+CSQ\r\r\n+CSQ: 5,0\r\n\r\nOK\r\n", [(LINE, b"AT+CSQ"), (LINE, b"+CSQ: 5,0"), (FINAL, b"OK")])


def test_every_final_result_form():
    for line in (b"OK", b"ERROR", b"+CME ERROR: 10", b"+CME ERROR: SIM busy", b"+CMS ERROR: 500",
                 b"+IP ERROR: Network is already opened", b"+CIPERROR: 4"):
        check(b"\r\n" + line + b"\r\n", [(FINAL, line)])


def test_final_result_kinds_and_codes():
    assert final_result(b"OK") == ("OK", None)
    assert final_result(b"ERROR") == ("ERROR", None)
    assert final_result(b"+CME ERROR: 10") == ("CME", 10)
    assert final_result(b"+CME ERROR: SIM busy") == ("CME", "SIM busy")
    assert final_result(b"+CMS ERROR: 500") == ("CMS", 500)
    assert final_result(b"+IP ERROR: No data") == ("IP", "No data")
    assert final_result(b"+CIPERROR: 4") == ("CIPERROR", 4)


def test_trailing_errors_after_ip_error_and_ciperror_are_swallowed():
    check(b"\r\n+CIPERROR: 4\r\n\r\nERROR\r\n\r\nERROR\r\n", [(FINAL, b"+CIPERROR: 4")])
    check(b"\r\n+IP ERROR: No data\r\n\r\nERROR\r\n", [(FINAL, b"+IP ERROR: No data")])
    parser = AtParser()
    assert events_of(b"\r\n+CIPERROR: 4\r\n\r\nERROR\r\n\r\nERROR\r\n\r\nERROR\r\n", parser=parser) == [
        (FINAL, b"+CIPERROR: 4"), (FINAL, b"ERROR")]  # never more than two
    assert parser.swallowed == 2


def test_settle_stops_swallowing():
    parser = AtParser()
    assert events_of(b"\r\n+IP ERROR: No data\r\n\r\nERROR\r\n", parser=parser) == [(FINAL, b"+IP ERROR: No data")]
    parser.trailing = 0
    assert events_of(b"\r\nERROR\r\n", parser=parser) == [(FINAL, b"ERROR")]


def test_urc_between_trailing_errors_is_still_a_line():
    check(b"\r\n+CIPERROR: 4\r\n\r\n+CIPRXGET: 1,0\r\n\r\nERROR\r\n",
          [(FINAL, b"+CIPERROR: 4"), (LINE, b"+CIPRXGET: 1,0")])


def test_prompt_has_no_line_end():
    check(b"\r\n>", [(PROMPT, None)])
    check(b"\r\n> ", [(PROMPT, None)])
    check(b"AT+CIPSEND=0,5\r\r\n>", [(LINE, b"AT+CIPSEND=0,5"), (PROMPT, None)])


def test_urc_before_the_prompt():
    check(b"\r\n+CIPRXGET: 1,1\r\n\r\n>", [(LINE, b"+CIPRXGET: 1,1"), (PROMPT, None)])


def test_counted_payload_is_read_by_length():
    data = b"ab\r\nOK\r\n+IPCLOSE: 0,1\r\n>\r\nERROR\r\nxyz"
    wire = b"\r\n+CIPRXGET: 2,0,%d,0\r\n" % len(data) + data + b"\r\nOK\r\n"
    check(wire, [(LINE, b"+CIPRXGET: 2,0,%d,0" % len(data)), (PAYLOAD, data), (FINAL, b"OK")])


def test_payload_that_is_all_line_ends_and_binary():
    data = bytes(range(256)) + b"\r\n\r\n"
    wire = b"\r\n+CIPRXGET: 2,3,%d,12\r\n" % len(data) + data + b"\r\nOK\r\n"
    check(wire, [(LINE, b"+CIPRXGET: 2,3,%d,12" % len(data)), (PAYLOAD, data), (FINAL, b"OK")])


def test_largest_payload_passes_through_a_smaller_buffer():
    data = bytes(i % 251 for i in range(PAYLOAD_LIMIT))
    wire = b"\r\n+CIPRXGET: 2,0,1500,0\r\n" + data + b"\r\nOK\r\n"
    assert PAYLOAD_LIMIT > BUFFER_SIZE
    check(wire, [(LINE, b"+CIPRXGET: 2,0,1500,0"), (PAYLOAD, data), (FINAL, b"OK")])


def test_push_mode_ipd_payload():
    check(b"\r\nRECV FROM:1.2.3.4:1883\r\n+IPD5\r\nOK\r\n>\r\n+CSQ: 1,1\r\n",
          [(LINE, b"RECV FROM:1.2.3.4:1883"), (LINE, b"+IPD5"), (PAYLOAD, b"OK\r\n>"), (LINE, b"+CSQ: 1,1")])


def test_push_mode_receive_header_payload():
    check(b"\r\n+RECEIVE,1,4\r\n\r\nOK\r\n\r\nOK\r\n", [(LINE, b"+RECEIVE,1,4"), (PAYLOAD, b"\r\nOK"), (FINAL, b"OK")])


def test_zero_length_and_mode_one_are_no_payload():
    check(b"\r\n+CIPRXGET: 2,0,0,0\r\n\r\nOK\r\n", [(LINE, b"+CIPRXGET: 2,0,0,0"), (FINAL, b"OK")])
    check(b"\r\n+CIPRXGET: 1,0\r\nOK\r\n", [(LINE, b"+CIPRXGET: 1,0"), (FINAL, b"OK")])


def test_header_announcing_too_much_is_not_trusted():
    parser = AtParser()
    wire = b"\r\n+CIPRXGET: 2,0,99999,0\r\n\r\nOK\r\n"
    assert events_of(wire, parser=parser) == [(LINE, b"+CIPRXGET: 2,0,99999,0"), (FINAL, b"OK")]
    assert parser.bad_headers == 1


def test_urcs_without_space_and_boot_noise():
    check(b"\x00\xff\xfe\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n+CHTTPSOPSE:13\r\n",
          [(LINE, b"\x00\xff\xfe"), (LINE, b"RDY"), (LINE, b"+CPIN: READY"), (LINE, b"SMS DONE"),
           (LINE, b"PB DONE"), (LINE, b"+CHTTPSOPSE:13")])


def test_lf_only_lines_are_accepted():
    check(b"+CSQ: 1,2\nOK\n", [(LINE, b"+CSQ: 1,2"), (FINAL, b"OK")])


def test_overlong_line_is_dropped_and_parser_resynchronises():
    for chunk in (None, 1, 100):
        parser = AtParser()
        wire = b"\r\n" + b"x" * (LINE_LIMIT * 3) + b"\r\n\r\nOK\r\n"
        out = events_of(wire, chunk, parser)
        assert out[0][0] == DROPPED and out[-1] == (FINAL, b"OK") and len(out) == 2, out
        assert parser.dropped_lines == 1


def test_line_of_exactly_the_limit_is_kept():
    line = b"+X: " + b"7" * (LINE_LIMIT - 4)
    assert len(line) == LINE_LIMIT
    assert events_of(b"\r\n" + line + b"\r\r\n", 1) == [(LINE, line)]
    assert events_of(b"\r\n" + line + b"7\r\n", 1)[0][0] == DROPPED


def test_feed_never_takes_more_than_fits():
    parser = AtParser()
    big = b"\r\n+CIPRXGET: 2,0,1500,0\r\n" + b"z" * 1500
    taken = parser.feed(big)
    assert 0 < taken <= BUFFER_SIZE
    # once drained, at least ROOM bytes are free, even behind a partial line
    while parser.next_event() is not None:
        pass
    assert parser.feed(b"q" * ROOM) == ROOM
    parser = AtParser()
    parser.feed(b"\r\n" + b"p" * LINE_LIMIT + b"\r\r")
    assert parser.next_event() is None
    assert parser.feed(b"q" * BUFFER_SIZE) == ROOM


def test_reset_forgets_partial_input():
    parser = AtParser()
    parser.feed(b"\r\n+CIPRXGET: 2,0,10,0\r\nabc")
    while parser.next_event() is not None:
        pass
    parser.reset()
    assert events_of(b"\r\nOK\r\n", parser=parser) == [(FINAL, b"OK")]


def test_fields_and_ints():
    assert split_fields(b'+CIPOPEN: 0,"TCP","116.228.221.51",100,-1') == [
        b"0", b"TCP", b"116.228.221.51", b"100", b"-1"]
    assert split_fields(b"+CIPOPEN: 1") == [b"1"]
    assert split_fields(b"RDY") == []
    assert to_int(b"-1") == -1 and to_int(b"x") is None and to_int(b"") is None


def _noise(seed, n):
    # a small LCG: the same bytes on every runtime
    out = bytearray(n)
    alphabet = b"\r\n>+:,0123456789OKERRORCIPRXGET IPD\x00\xff"
    for i in range(n):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = alphabet[seed % len(alphabet)]
    return out


def test_fuzz_never_raises_and_events_are_well_formed():
    for seed in range(40):
        data = _noise(seed, 1200)  # more than the parser's buffer, small for the heap
        for chunk in (None, 1, 13):
            for kind, value in events_of(data, chunk):
                assert kind in (LINE, FINAL, PROMPT, PAYLOAD, DROPPED)
                if kind in (LINE, FINAL):
                    assert b"\n" not in value and len(value) <= LINE_LIMIT and value[-1:] != b"\r"
        # and it still parses a clean answer afterwards
        parser = AtParser()
        events_of(data, 64, parser)
        parser.reset()
        assert events_of(b"\r\nOK\r\n", parser=parser) == [(FINAL, b"OK")]
