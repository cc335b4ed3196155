# Readings placed in time, in both lanes: the duty cycle on test_app's fakes with an RTC
# of its own (port.utc/set_utc replaced) and a transport that read the network's time.
import json
import os

from cellmqtt import app, port
from cellmqtt.port import _pc
from test_app import CONFIG, CommandBroker, _cycle, _in_folder, _published

DATA = CONFIG["topics"]["data"]
HEALTH = CONFIG["topics"]["health"]
NETWORK_UTC = 1935000000  # 2031-04-26


class FakeRtc:
    def __init__(self, seconds=None):
        self.seconds = seconds
        self.sets = 0

    def utc(self):
        return self.seconds

    def set_utc(self, seconds):
        self.seconds = seconds
        self.sets += 1


def _with_rtc(rtc, body):
    saved = port.utc, port.set_utc
    port.utc, port.set_utc = rtc.utc, rtc.set_utc
    try:
        _in_folder(body)
    finally:
        port.utc, port.set_utc = saved


def _network_time(uplink, utc):
    """Each window's transport reads `utc` as the modem driver does after registration."""
    make = uplink.__class__.__call__

    def factory(config, power, ledger, tls):
        transport = make(uplink, config, power, ledger, tls)
        transport.utc = utc
        return transport

    return factory


def _readings(broker):
    return [reading for message in _published(broker, DATA) for reading in message["readings"]]


def test_a_reading_carries_ts_once_the_clock_is_known():
    rtc = FakeRtc(NETWORK_UTC)

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = _cycle(broker, folder)
        cycle.sample()
        rtc.seconds += 60
        cycle.sample()
        assert (await cycle.window()).ok
        assert [reading["ts"] for reading in _readings(broker)] == [NETWORK_UTC, NETWORK_UTC + 60]
        assert "boot" not in _readings(broker)[0]
        assert app.DutyCycle.boot_file not in os.listdir()  # no flash write while the clock is known

    _with_rtc(rtc, body)


def test_readings_before_the_first_sync_get_ts_from_their_uptime_at_publish():
    rtc = FakeRtc()

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = _cycle(broker, folder)
        cycle._make_transport = _network_time(uplink, NETWORK_UTC)
        cycle.sample()
        cycle.sample()
        with open(app.DutyCycle.boot_file) as f:
            assert f.read() == "1"  # written once for the boot
        assert (await cycle.window()).ok
        assert rtc.seconds == NETWORK_UTC and rtc.sets == 1
        up = app._uptime_s()
        for reading in _readings(broker):
            assert reading["boot"] == 1
            assert reading["ts"] == NETWORK_UTC - up + reading["uptime_s"]
        assert "clock_step_s" not in _published(broker, HEALTH)[0]  # the first setting is no step

    _with_rtc(rtc, body)


def test_a_reading_sent_again_keeps_its_ts_when_the_clock_moved_in_between():
    """A batch whose PUBACK was lost goes again in the next window: the same reading with
    the same content, though the RTC was corrected (or its second ticked) in between."""
    rtc = FakeRtc(NETWORK_UTC)

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = _cycle(broker, folder)
        rtc.seconds = None  # taken before the first sync
        cycle.sample()
        rtc.seconds = NETWORK_UTC
        (_, raw), = cycle.store.peek(1, raw=True)
        first = json.loads(cycle._placed(raw))
        rtc.seconds += 1  # a one-second correction before the next window
        again = json.loads(cycle._placed(raw))
        assert "ts" in first and first == again

    _with_rtc(rtc, body)


def test_a_reading_of_an_earlier_boot_keeps_seq_boot_and_uptime():
    rtc = FakeRtc()

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = _cycle(broker, folder)
        cycle.sample()
        cycle, uplink, power, book = _cycle(broker, folder)  # a reset: the next boot
        cycle._make_transport = _network_time(uplink, NETWORK_UTC)
        cycle.sample()
        assert (await cycle.window()).ok
        earlier, this = _readings(broker)
        assert earlier["boot"] == 1 and "ts" not in earlier and "uptime_s" in earlier
        assert this["boot"] == 2 and this["ts"] <= NETWORK_UTC and this["seq"] == earlier["seq"] + 1

    _with_rtc(rtc, body)


def test_a_step_past_max_step_s_is_reported_in_health():
    rtc = FakeRtc(NETWORK_UTC + 3600)  # an hour ahead: the correction goes back

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = _cycle(broker, folder)
        cycle._make_transport = _network_time(uplink, NETWORK_UTC)
        cycle.sample()
        assert (await cycle.window()).ok
        assert json.loads(json.dumps(_published(broker, HEALTH)[0]))["clock_step_s"] == -3600
        assert rtc.seconds == NETWORK_UTC
        cycle.sample()
        assert (await cycle.window()).ok  # within the bound now: nothing more to report
        assert "clock_step_s" not in _published(broker, HEALTH)[1]

    _with_rtc(rtc, body)


def test_a_small_step_is_applied_without_a_report():
    rtc = FakeRtc(NETWORK_UTC - 5)

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = _cycle(broker, folder)
        cycle._make_transport = _network_time(uplink, NETWORK_UTC)
        cycle.sample()
        assert (await cycle.window()).ok
        assert rtc.seconds == NETWORK_UTC and "clock_step_s" not in _published(broker, HEALTH)[0]

    _with_rtc(rtc, body)


def test_virtual_ticks_wrap_at_2_30_like_a_board():
    top = (1 << 30) - 1
    assert _pc.ticks_add(top, 1) == 0
    assert _pc.ticks_diff(0, top) == 1
    assert _pc.ticks_diff(top, 0) == -1
    assert _pc.ticks_diff(_pc.ticks_add(5, 1 << 29), 5) == -(1 << 29)
