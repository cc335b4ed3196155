# Readings placed in time, in both lanes: the duty cycle on app_fakes.py's fakes with an RTC
# of its own (port.utc/set_utc replaced) and a transport that read the network's time.
import json
import os

from cellmqtt import app, port
from cellmqtt.port import _pc
from app_fakes import CONFIG, CommandBroker, duty_cycle, in_folder, published

DATA = CONFIG["topics"]["data"]
HEALTH = CONFIG["topics"]["health"]
NETWORK_UTC = 1935000000  # 2031-04-26


class FakeRtc:
    """seconds: UTC once set (None before); count: its own count, which a reset keeps and
    a power loss restarts, as does its memory."""

    def __init__(self, seconds=None):
        self.seconds = seconds
        self.count = 0
        self.memory = b""
        self.sets = 0

    def utc(self):
        return self.seconds

    def set_utc(self, seconds):
        self.seconds = seconds
        self.sets += 1

    def rtc_s(self):
        return self.count

    def rtc_memory(self, data=None):
        if data is None:
            return self.memory
        self.memory = bytes(data)

    def power_loss(self):
        self.seconds = None
        self.count = 0
        self.memory = b""


def _with_rtc(rtc, body):
    saved = port.utc, port.set_utc, port.rtc_s, port.rtc_memory
    port.utc, port.set_utc, port.rtc_s, port.rtc_memory = rtc.utc, rtc.set_utc, rtc.rtc_s, rtc.rtc_memory
    try:
        in_folder(body)
    finally:
        port.utc, port.set_utc, port.rtc_s, port.rtc_memory = saved


def _network_time(uplink, utc):
    """Each window's transport reads `utc` as the modem driver does after registration."""
    make = uplink.__class__.__call__

    def factory(config, power, ledger, tls):
        transport = make(uplink, config, power, ledger, tls)
        transport.utc = utc
        return transport

    return factory


class LinkDown:
    """A client whose link fails at the first publish: the window's sync alone happens."""

    async def publish(self, topic, payload, qos=0, wait=True):
        raise OSError(104, "link down")

    async def accepted(self):
        return True


async def _sync_only(cycle, uplink, utc):
    """The network's time read and the RTC set as a window does, then its link fails."""
    cycle._transport = _network_time(uplink, utc)(CONFIG, None, None, None)
    try:
        await cycle._publish_queue(LinkDown(), None)
    except OSError:
        pass
    finally:
        cycle._transport = None


def _boot_sampling(broker, folder, rtc, count):
    """A boot (the first, or one after a reset) that takes a reading at the RTC's `count`."""
    cycle, uplink, power, book = duty_cycle(broker, folder)
    rtc.count = count
    cycle.sample()
    return cycle, uplink


def _readings(broker):
    return [reading for message in published(broker, DATA) for reading in message["readings"]]


def test_a_reading_carries_ts_once_the_clock_is_known():
    rtc = FakeRtc(NETWORK_UTC)

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = duty_cycle(broker, folder)
        cycle.sample()
        rtc.seconds += 60
        cycle.sample()
        assert (await cycle.window()).ok
        assert [reading["ts"] for reading in _readings(broker)] == [NETWORK_UTC, NETWORK_UTC + 60]
        assert "boot" not in _readings(broker)[0]
        assert app.DutyCycle.boot_file not in os.listdir()  # no flash write while the clock is known

    _with_rtc(rtc, body)


def test_readings_before_the_first_sync_get_ts_from_the_rtc_count_at_publish():
    rtc = FakeRtc()

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = duty_cycle(broker, folder)
        cycle._make_transport = _network_time(uplink, NETWORK_UTC)
        rtc.count = 100
        cycle.sample()
        rtc.count = 160
        cycle.sample()
        with open(app.DutyCycle.boot_file) as f:
            assert f.read() == "1"  # written once for the boot
        rtc.count = 200  # the network's time is read now
        assert (await cycle.window()).ok
        assert rtc.seconds == NETWORK_UTC and rtc.sets == 1
        readings = _readings(broker)
        assert [reading["boot"] for reading in readings] == [1, 1]
        assert [reading["ts"] for reading in readings] == [NETWORK_UTC - 100, NETWORK_UTC - 40]
        assert "clock_step_s" not in published(broker, HEALTH)[0]  # the first setting is no step

    _with_rtc(rtc, body)


def test_a_reading_sent_again_keeps_its_ts_when_the_clock_moved_in_between():
    """A batch whose PUBACK was lost goes again in the next window: the same reading with
    the same content, though the RTC was corrected (or its second ticked) in between."""
    rtc = FakeRtc(NETWORK_UTC)

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = duty_cycle(broker, folder)
        rtc.seconds = None  # taken before the first sync
        cycle.sample()
        await _sync_only(cycle, uplink, NETWORK_UTC)
        (_, raw), = cycle.store.peek(1, raw=True)
        first = json.loads(cycle._placed(raw))
        rtc.seconds += 1  # a one-second correction before the next window
        again = json.loads(cycle._placed(raw))
        assert "ts" in first and first == again

    _with_rtc(rtc, body)


def test_a_reading_of_an_earlier_boot_before_the_first_sync_gets_ts_from_the_rtc_count():
    rtc = FakeRtc()

    async def body(folder):
        broker = CommandBroker()
        _boot_sampling(broker, folder, rtc, 30)
        cycle, uplink = _boot_sampling(broker, folder, rtc, 90)  # after a reset: the count ran on
        cycle._make_transport = _network_time(uplink, NETWORK_UTC)
        rtc.count = 95
        assert (await cycle.window()).ok
        earlier, this = _readings(broker)
        assert earlier["boot"] == 1 and earlier["ts"] == NETWORK_UTC - 65 and earlier["rtc_s"] == 30
        assert this["boot"] == 2 and this["ts"] == NETWORK_UTC - 5 and this["seq"] == earlier["seq"] + 1

    _with_rtc(rtc, body)


def test_the_offset_outlives_a_reset_after_the_sync_and_a_power_loss_ends_it():
    """A window cut after the sync leaves readings of that count queued: the next boot,
    with the RTC known, still dates them. A power loss restarts the count: readings taken
    before it keep their boot and count, and no ts (their order is kept by seq)."""
    rtc = FakeRtc()

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink = _boot_sampling(broker, folder, rtc, 40)
        rtc.count = 50
        await _sync_only(cycle, uplink, NETWORK_UTC)
        assert rtc.seconds == NETWORK_UTC and cycle.store.depth == 1
        rtc.count, rtc.seconds = 70, NETWORK_UTC + 20
        cycle, uplink, power, book = duty_cycle(broker, folder)  # a reset
        (_, raw), = cycle.store.peek(1, raw=True)
        assert json.loads(cycle._placed(raw))["ts"] == NETWORK_UTC - 10

        rtc.power_loss()
        cycle, uplink = _boot_sampling(broker, folder, rtc, 5)  # boot 2, the new count's first
        cycle._make_transport = _network_time(uplink, NETWORK_UTC + 1000)
        rtc.count = 9
        assert (await cycle.window()).ok
        before, after = _readings(broker)
        assert before["boot"] == 1 and before["rtc_s"] == 40 and "ts" not in before
        assert after["boot"] == 2 and after["ts"] == NETWORK_UTC + 996

    _with_rtc(rtc, body)


def test_a_step_past_max_step_s_is_reported_in_health():
    rtc = FakeRtc(NETWORK_UTC + 3600)  # an hour ahead: the correction goes back

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = duty_cycle(broker, folder)
        cycle._make_transport = _network_time(uplink, NETWORK_UTC)
        cycle.sample()
        assert (await cycle.window()).ok
        assert json.loads(json.dumps(published(broker, HEALTH)[0]))["clock_step_s"] == -3600
        assert rtc.seconds == NETWORK_UTC
        cycle.sample()
        assert (await cycle.window()).ok  # within the bound now: nothing more to report
        assert "clock_step_s" not in published(broker, HEALTH)[1]

    _with_rtc(rtc, body)


def test_a_small_step_is_applied_without_a_report():
    rtc = FakeRtc(NETWORK_UTC - 5)

    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = duty_cycle(broker, folder)
        cycle._make_transport = _network_time(uplink, NETWORK_UTC)
        cycle.sample()
        assert (await cycle.window()).ok
        assert rtc.seconds == NETWORK_UTC and "clock_step_s" not in published(broker, HEALTH)[0]

    _with_rtc(rtc, body)


def test_virtual_ticks_wrap_at_2_30_like_a_board():
    top = (1 << 30) - 1
    assert _pc.ticks_add(top, 1) == 0
    assert _pc.ticks_diff(0, top) == 1
    assert _pc.ticks_diff(top, 0) == -1
    assert _pc.ticks_diff(_pc.ticks_add(5, 1 << 29), 5) == -(1 << 29)
