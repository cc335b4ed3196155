# Bad input from people, on both runtimes: each gets an error naming what is wrong,
# and nothing queued or connected is lost. config.json values of a wrong type, out of
# range, missing or unknown (ConfigError names the key, for every key of the schema);
# publish with a topic, QoS or payload MQTT cannot carry (LocalProtocolError, the
# client stays connected and holds nothing extra); readings the queue must not store
# (LimitExceeded names queue.max_reading_bytes, the queued readings survive a reopen);
# a broker name that does not resolve (OSError).

from cellmqtt import config, port
from cellmqtt.errors import ConfigError, LimitExceeded, LocalProtocolError
from cellmqtt.ledger import Ledger
from cellmqtt.memwatch import DEFAULTS as MEMWATCH_DEFAULTS
from cellmqtt.mqtt import MqttClient
from cellmqtt.mqtt import packets as p
from cellmqtt.store import Store
from mqtt_fakes import FakeBroker, Streams, of_type
from support import raises, remove_tree, run, temp_folder

DEVICE = "0a1b2c3d4e5f"
_BAD_TEXT = "{bad} \x00"  # braces, a space and NUL: no text key allows all three
_BAD_PINS = ("4", 4.0, True, 6, 11, 20, 24, 28, 40, -1, 100)  # 6-11 hold the flash


def _minimal():
    return {"apn": "internet", "broker": {"host": "broker.example.com"}}


def _with(dotted, value):
    raw = _minimal()
    section = raw
    keys = dotted.split(".")
    for key in keys[:-1]:
        section = section.setdefault(key, {})
    section[keys[-1]] = value
    return raw


def _refused(raw, key):
    error = raises(ConfigError, config.validate, raw, DEVICE)
    assert error.key == key, (key, error.key, str(error))
    assert str(error).startswith("config %s: " % key), str(error)
    return error


def _leaves(schema, prefix=""):
    """(dotted key, spec) of every plain key of the schema."""
    out = []
    for key in sorted(schema):
        spec = schema[key]
        if type(spec) is dict:
            out += _leaves(spec, prefix + key + ".")
        elif not callable(spec):
            out.append((prefix + key, spec))
    return out


def _bad_values(spec):
    default, rule = spec[0], spec[1]
    kind = rule[0]
    if kind == "int":
        bad = ["%d" % rule[1], 1.5, True, [], {}, rule[1] - 1, rule[2] + 1]
    elif kind == "choice":
        bad = [0, "nope", 1.5, [], {}]
    elif kind == "text":
        bad = [5, True, 1.5, [], {}, _BAD_TEXT]
    else:
        bad = list(_BAD_PINS)
    if not (default is None or len(spec) > 2):
        bad.append(None)
    return bad


def test_every_key_refuses_values_of_the_wrong_type_or_range_by_name():
    checked = 0
    for dotted, spec in _leaves(config.SCHEMA):
        for value in _bad_values(spec):
            _refused(_with(dotted, value), dotted)
            checked += 1
    for key in MEMWATCH_DEFAULTS:
        for value in ("1", [], None, 1.5):
            _refused(_with("memwatch." + key, value), "memwatch." + key)
            checked += 1
    assert checked > 200


def test_pins_out_of_range_name_the_pin():
    pins = [dotted for dotted, spec in _leaves(config.SCHEMA) if spec[1][0] == "pin"]
    assert len(pins) == 10
    for dotted in pins:
        for value in _BAD_PINS:
            error = _refused(_with(dotted, value), dotted)
            assert "GPIO" in str(error)


def test_sections_that_are_not_objects_name_the_section():
    sections = [key for key in sorted(config.SCHEMA) if type(config.SCHEMA[key]) is dict or
                callable(config.SCHEMA[key])]
    assert "broker" in sections and "memwatch" in sections
    for section in sections:
        for value in ([], "x", 5, True):
            _refused(_with(section, value), section)
    _refused([], "config")
    _refused("config", "config")


def test_missing_keys_name_the_key():
    for dotted in ("apn", "broker.host"):
        raw = _minimal()
        if dotted == "apn":
            del raw["apn"]
        else:
            del raw["broker"]["host"]
        assert "required" in str(_refused(raw, dotted))


def test_unknown_keys_name_the_key_and_what_is_allowed():
    sections = [""] + [key + "." for key in sorted(config.SCHEMA) if type(config.SCHEMA[key]) is dict]
    for prefix in sections + ["memwatch."]:
        error = _refused(_with(prefix + "bogus", 1), prefix + "bogus")
        assert "allowed" in str(error)


def test_a_good_configuration_still_passes():
    # the bad values above were refused for themselves, not because the base was bad
    assert config.validate(_minimal(), DEVICE)["device_id"] == DEVICE


# publish: bad topics, QoS and payloads over the in-memory broker

async def _connected():
    streams = Streams()
    book = Ledger()
    broker = FakeBroker()
    client = MqttClient("dev-1", keepalive_s=0, ack_timeout_ms=1000, connect_timeout_ms=1000, ledger=book)
    await client.connect(await streams.opener(lambda: broker)())
    book.mark_baseline()
    return client, broker, streams, book


async def _refuse_each(cases):
    """Each (topic, payload, qos, reason) is refused with a LocalProtocolError naming
    the reason; the client stays connected, holds no more than before, and its next
    good QoS 1 publish goes through. Nothing bad reaches the broker."""
    client, broker, streams, book = await _connected()
    try:
        for topic, payload, qos, reason in cases:
            try:
                await client.publish(topic, payload, qos)
                raise AssertionError("publish(%r, %r, %r) was accepted" % (topic, payload, qos))
            except LocalProtocolError as error:
                assert reason in str(error), (reason, str(error))
            assert client.connected, (topic, payload, qos, client.state)
            assert book.at_baseline(), book.extra()
            await client.publish("good/after", b"ok", qos=1)
            assert book.at_baseline(), book.extra()
    finally:
        await client.disconnect()
        await streams.settle()
    published = of_type(broker.received, p.PUBLISH)
    assert [packet.topic for packet in published] == ["good/after"] * len(cases)
    assert len(book) == 0, book.entries()


def test_publish_refuses_topics_mqtt_forbids_and_stays_connected():
    run(_refuse_each([
        ("a/+/b", b"x", 0, "wildcard in topic name"),
        ("a/#", b"x", 1, "wildcard in topic name"),
        ("+", b"x", 2, "wildcard in topic name"),
        ("a\x00b", b"x", 1, "NUL in topic"),
        ("", b"x", 0, "empty topic"),
        ("", b"x", 1, "empty topic"),
        (5, b"x", 1, "topic must be a str"),
        (None, b"x", 0, "topic must be a str"),
    ]))


def test_publish_refuses_a_qos_other_than_0_1_2_and_stays_connected():
    run(_refuse_each([
        ("a/b", b"x", 3, "QoS 3 not 0, 1 or 2"),
        ("a/b", b"x", -1, "QoS -1 not 0, 1 or 2"),
        ("a/b", b"x", "1", "QoS '1' not 0, 1 or 2"),
    ]))


def test_publish_refuses_a_payload_that_is_not_bytes_and_stays_connected():
    run(_refuse_each([
        ("a/b", 5, 0, "payload"),
        ("a/b", 1.5, 1, "payload"),
        ("a/b", {"v": 1}, 1, "payload"),
        ("a/b", [1, 2, 3], 0, "payload"),
    ]))


# the queue: readings it must not store

def _with_queue(test):
    root = temp_folder("cellmqtt-bad")
    try:
        book = Ledger()
        bounds = {"max_readings": 10, "max_bytes": 2048, "max_reading_bytes": 64, "ledger": book}
        test(lambda: Store(root + "/q", **bounds))
        assert len(book) == 0, book.entries()
    finally:
        remove_tree(root)


def test_an_oversized_reading_names_the_bound_and_loses_nothing_queued():
    def check(open_store):
        store = open_store()
        for i in range(3):
            store.append({"v": i})
        queued = store.peek(10, raw=True)
        for size in (64, 65, 1000):
            error = raises(LimitExceeded, store.append, {"v": "x" * size})
            assert error.limit == 64 and "queue.max_reading_bytes" in str(error), str(error)
        assert store.peek(10, raw=True) == queued and store.next_seq == 4
        reopened = open_store()
        assert reopened.peek(10, raw=True) == queued and reopened.next_seq == 4
        assert reopened.append({"v": 3}) == 4
        assert [seq for seq, _ in reopened.peek(10)] == [1, 2, 3, 4]
    _with_queue(check)


def test_a_reading_that_is_not_json_is_refused_and_loses_nothing_queued():
    # Readings are stored as the JSON that is published: a value JSON cannot carry
    # (NaN from a failed sensor read, an arbitrary object) must not become a record.
    def check(open_store):
        store = open_store()
        store.append({"v": 1})
        queued = store.peek(10, raw=True)
        for reading in ({"seq": 7}, [1, 2], "text", {"v": float("nan")}, {"v": float("inf")},
                        {"v": object()}):
            try:
                store.append(reading)
                raise AssertionError("stored %r as %r" % (reading, store.peek(10, raw=True)[-1]))
            except (ValueError, TypeError):
                pass
        assert store.peek(10, raw=True) == queued and store.next_seq == 2
        assert open_store().peek(10, raw=True) == queued
    _with_queue(check)


# a broker name that does not resolve

def test_a_broker_name_that_does_not_resolve_is_an_oserror():
    # .invalid never resolves (RFC 6761). On the device the broker name goes to the
    # modem instead (AT+CIPOPEN), whose failure is a ModemError; the duty cycle counts
    # either as a failed window and backs off, and the readings stay queued.
    async def main():
        try:
            stream = await port.open_tcp("no-such-host.invalid:1883")
        except OSError as error:
            return error
        await stream.close()
        raise AssertionError("no-such-host.invalid resolved")

    assert isinstance(run(main()), OSError)
