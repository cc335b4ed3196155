# Topic names and filters: the rules and the examples of section 4.7 of the spec.
from cellmqtt.mqtt.topic import filter_error, matches, matches_levels, topic_error
from support import MICROPYTHON, raises


def test_topic_names():
    for good in ("a", "a/b", "/", "a//b", "sport/tennis/player1", "$SYS/broker", " ", "\u00e9/x"):
        assert topic_error(good) is None, good
    assert topic_error("") == "empty topic"
    assert topic_error("a\x00b") == "NUL in topic"
    for bad in ("a/+", "#", "a/#", "+", "a+b"):
        assert topic_error(bad) == "wildcard in topic name", bad


def test_filters():
    for good in ("#", "+", "a/#", "a/+", "+/+", "/+", "+/", "sport/tennis/#", "sport/+/player1", "$SYS/#", "a//b"):
        assert filter_error(good) is None, good
    for bad in ("", "a/#/b", "#/a", "a#", "a/b#", "a+", "+a", "a/+b/c", "##", "++", "a\x00"):
        assert filter_error(bad) is not None, bad
    raises(ValueError, matches, "a/#/b", "a/b")


def test_multi_level_wildcard_examples():
    # [MQTT-4.7.1-2] "sport/tennis/player1/#"
    f = "sport/tennis/player1/#"
    for topic in ("sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon"):
        assert matches(f, topic), topic
    assert matches("sport/#", "sport")  # also the parent level
    assert not matches("sport/tennis/player1/#", "sport/tennis/player2")
    assert matches("#", "a/b/c") and matches("#", "/")


def test_single_level_wildcard_examples():
    assert matches("sport/tennis/+", "sport/tennis/player1")
    assert matches("sport/tennis/+", "sport/tennis/player2")
    assert not matches("sport/tennis/+", "sport/tennis/player1/ranking")
    assert not matches("sport/+", "sport")
    assert matches("sport/+", "sport/")
    assert matches("+/+", "/finance")
    assert matches("/+", "/finance")
    assert not matches("+", "/finance")
    assert matches("+/tennis/#", "sport/tennis/x/y")
    assert matches("a//c", "a//c") and not matches("a/+/c", "a/c")


def test_exact_levels():
    assert matches("a/b", "a/b")
    assert not matches("a/b", "a/bc") and not matches("a/bc", "a/b")
    assert not matches("a/b", "a/b/c") and not matches("a/b/c", "a/b")
    assert not matches("A/b", "a/b")  # case-sensitive


def test_dollar_topics_and_leading_wildcards():
    # [MQTT-4.7.2-1]
    assert not matches("#", "$SYS/monitor/Clients")
    assert not matches("+/monitor/Clients", "$SYS/monitor/Clients")
    assert matches("$SYS/#", "$SYS/monitor/Clients")
    assert matches("$SYS/monitor/+", "$SYS/monitor/Clients")
    assert matches("a/#", "a/$b")  # only a leading "$" is special


def test_matching_allocates_nothing():
    levels = tuple("home/+/temp/#".split("/"))  # as a subscription keeps them
    results = []
    if MICROPYTHON:
        import micropython

        micropython.heap_lock()  # any allocation now raises MemoryError
    try:
        first = matches_levels(levels, "home/kitchen/temp/now")
        second = matches_levels(levels, "home/kitchen/humidity")
        third = matches_levels(levels, "$SYS/kitchen/temp")
    finally:
        if MICROPYTHON:
            micropython.heap_unlock()
    results.append((first, second, third))
    assert results == [(True, False, False)]
