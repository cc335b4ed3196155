from cellmqtt import downlink
from support import raises


def test_known_commands_parse():
    assert downlink.parse(b'{"cmd": "set_period", "period_s": 300}') == {"cmd": "set_period", "period_s": 300}
    assert downlink.parse(b'{"cmd": "status"}') == {"cmd": "status"}


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
        error = raises(downlink.CommandError, downlink.parse, payload)
        assert reason in str(error), (payload, str(error))


def test_inbox_is_bounded_and_counts_drops():
    inbox = downlink.Inbox()
    for n in range(downlink.MAX_PENDING + 3):
        inbox.put("t", memoryview(b"%d" % n), 1, False)
    taken = inbox.take()
    assert len(taken) == downlink.MAX_PENDING and inbox.dropped == 3
    assert taken[0] == b"0" and inbox.take() == []


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
        error = raises(downlink.CommandError, downlink.parse, payload)
        assert len(str(error)) <= downlink.MAX_COMMAND_BYTES + 64, payload
    # the last key wins in JSON; it is checked like any other
    assert downlink.parse(b'{"cmd": "reboot", "cmd": "status"}') == {"cmd": "status"}
    raises(downlink.CommandError, downlink.parse, b'{"cmd": "status", "cmd": "reboot"}')
