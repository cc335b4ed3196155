from cellmqtt import commands, downlink
from support import raises


def test_known_commands_parse():
    assert commands.parse(b'{"cmd": "set_period", "period_s": 300}') == {"cmd": "set_period", "period_s": 300}
    assert commands.parse(b'{"cmd": "status"}') == {"cmd": "status"}


def test_everything_else_is_refused_with_a_reason():
    cases = [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"cmd": "reboot"}', "unknown cmd"),
        (b'{"cmd": 5}', "unknown cmd"),
        (b'{"cmd": "set_period"}', "set_period.period_s"),
        (b'{"cmd": "set_period", "period_s": "60"}', "set_period.period_s"),
        (b'{"cmd": "set_period", "period_s": 0}', "from 1 to 86400"),
        (b'{"cmd": "set_period", "period_s": 90000}', "from 1 to 86400"),
        (b'{"cmd": "set_period", "period_s": 1.5}', "set_period.period_s"),
        (b'{"cmd": "status", "force": true}', "takes no field force"),
        (b'{"cmd": "status", "x": "' + b"a" * 300 + b'"}', "larger than"),
        (b"\xff\xfe", "not JSON"),
    ]
    for payload, reason in cases:
        error = raises(commands.CommandError, commands.parse, payload)
        assert reason in str(error), (payload, str(error))


def _drain(inbox):
    items = inbox.items[:]
    del inbox.items[:]
    return items


def test_inbox_takes_a_bounded_number_a_window_and_lets_the_rest_go():
    inbox = downlink.Inbox(4, "t")
    inbox.open()
    inbox.put("t", memoryview(b"0"), 1, False, 100)
    inbox.put_oversized("t", 133368, 1, 101)
    assert inbox.items.pop(0) == (b"0", 100)
    inbox.put("t", memoryview(b"x" * 300), 0, False, None)  # kept as its size, not its bytes
    inbox.put("t", memoryview(b"3"), 1, False, 103)
    inbox.put("t", memoryview(b"4"), 1, False, 104)  # over the limit: left at the broker
    assert _drain(inbox) == [(133368, 101), (300, None), (b"3", 103)]
    assert inbox.deferred == 1 and inbox.oversized == 1
    inbox.open()
    inbox.put("t", b"a", 1, False, 105)
    inbox.put("t", b"b", 1, False, 106)
    inbox.close()  # the window is over: held and later ones go back to the broker
    inbox.put("t", b"c", 1, False, 107)
    assert inbox.items == [] and inbox.deferred == 4
    inbox.open()
    inbox.put("t", b"again", 1, False, 108)
    assert _drain(inbox) == [(b"again", 108)]


def test_a_command_too_large_to_keep_is_answered_with_its_size():
    error = raises(commands.CommandError, commands.parse, 133368)
    assert str(error) == "command of 133368 bytes is larger than the limit of 256 bytes"


def test_a_command_at_exactly_the_limit_is_read_and_one_byte_over_is_not():
    head = b'{"cmd": "status", "x": "'
    at_limit = head + b"a" * (downlink.MAX_COMMAND_BYTES - len(head) - 2) + b'"}'
    assert len(at_limit) == downlink.MAX_COMMAND_BYTES
    assert "takes no field x" in str(raises(commands.CommandError, commands.parse, at_limit))
    over = at_limit[:-2] + b'a"}'
    assert "257 bytes is larger than the limit" in str(raises(commands.CommandError, commands.parse, over))
    fits = b'{"cmd": "set_period", "period_s": 300' + b" " * (downlink.MAX_COMMAND_BYTES - 38) + b"}"
    assert len(fits) == downlink.MAX_COMMAND_BYTES and commands.parse(fits)["period_s"] == 300


def test_every_malformed_shape_gets_its_reason():
    cases = [
        (b'{"cmd": "set_period", "period_s": 1e308}', "must be an integer from 1 to 86400"),
        (b'{"cmd": "set_period", "period_s": -1}', "must be an integer from 1 to 86400"),
        (b'{"cmd": "set_period", "period_s": "60"}', "must be an integer from 1 to 86400"),
        (b'{"cmd": "set_period", "period_s": true}', "must be an integer from 1 to 86400"),
        (b'{"cmd": "set_period", "period_s": [[[[60]]]]}', "must be an integer from 1 to 86400"),
        (b'{"cmd": "set_period", "period_s": 60, "extra": 1}', "set_period takes no field extra"),
        (b'{"period_s": 60}', "unknown cmd; known: set_period, status"),
        (b'{"cmd": {"cmd": "status"}}', "unknown cmd"),
        (b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "not a JSON object"),
        (b'{"cmd": "status"', "not JSON"),
        (b'{"cmd": "st\xe4tus"}', "not JSON"),
        (b'{"cmd": "' + bytes([0xFF, 0xFE]) + b'"}', "not JSON"),
        (bytes([0xC3, 0x28]), "not JSON"),
        (b"   ", "not JSON"),
        (b"42", "not a JSON object"),
    ]
    for payload, reason in cases:
        error = raises(commands.CommandError, commands.parse, payload)
        assert reason in str(error), (payload, str(error))


def test_hostile_commands_are_refused_and_bounded():
    cases = [
        b'{"cmd": "set_period", "period_s": true}',  # a bool is not an integer here
        b'{"cmd": "set_period", "period_s": 1e3}',
        b'{"cmd": "set_period", "period_s": -5}',
        b'{"cmd": "set_period", "period_s": 100000000000000000000000000000}',
        b'{"cmd": "set_period", "period_s": [300]}',
        b'{"cmd": "set_period", "period_s": {"v": 300}}',
        b'{"cmd": "set_period", "period_s": null}',
        b'{"cmd": ["status"]}',
        b'{"cmd": "status "}',
        b'{"cmd": "STATUS"}',
        b'{"cmd": "status\\u0000"}',
        b'{"cmd": "set_period", "period_s": 300, "cmd2": "x"}',
        b'{"cmd": "status"} trailing',
        b"[" * 200 + b"]" * 200,
        b'"status"',
        b"null",
        b"",
        b"{" + b" " * 300 + b"}",
    ]
    for payload in cases:
        error = raises(commands.CommandError, commands.parse, payload)
        assert len(str(error)) <= downlink.MAX_COMMAND_BYTES + 64, payload
    # the last key wins in JSON; it is checked like any other
    assert commands.parse(b'{"cmd": "reboot", "cmd": "status"}') == {"cmd": "status"}
    raises(commands.CommandError, commands.parse, b'{"cmd": "status", "cmd": "reboot"}')
