# The duty cycle's fakes, shared by test_app and test_time (a module of its own, so a
# test that needs them does not compile test_app's tests too: a small heap fails at that).
import json
import os

from cellmqtt import app
from cellmqtt.ledger import Ledger
from cellmqtt.mqtt import packets as p
from cellmqtt.power import OFF, ON
from cellmqtt.synthetic import SyntheticSensor
from mqtt_fakes import FakeBroker, Streams, of_type
from support import example_config, remove_tree, run, temp_folder


def _quick(raw):
    raw["broker"]["timeout_s"] = 1  # a withheld PUBACK fails the window in a second
    raw["upload"].update(every_n_readings=2, period_s=None)
    raw["retry"].update(backoff_min_s=120, backoff_max_s=480)
    raw["downlink"]["max_per_window"] = 3


CONFIG = example_config(_quick)
STATUS = CONFIG["topics"]["status"]
COMMAND = CONFIG["topics"]["command"]


class FakePower:
    def __init__(self):
        self.state = OFF
        self.status = True  # STATUS while on; False: a brown-out
        self.cycle_on_ms = 0
        self.total_on_ms = 0
        self.cycles = 0

    async def power_on(self, ready=None):
        self.state = ON
        self.cycles += 1

    async def power_off(self, send_cpof=None):
        self.state = OFF

    def status_high(self):
        return self.status if self.state == ON else False


class CommandBroker(FakeBroker):
    """Delivers the commands queued while the board slept right after CONNACK, as a
    broker with a persistent session does, and takes them back unless acknowledged."""

    def __init__(self, commands=(), **options):
        FakeBroker.__init__(self, session_present=True, **options)
        self.queued = list(commands)
        self.sent = {}  # packet id -> command

    async def _answer(self, peer, packet):
        going_on = await FakeBroker._answer(self, peer, packet)
        if packet.TYPE == p.CONNECT:
            for command in self.queued:
                await self.deliver(COMMAND, command, qos=1)
                self.sent[self._next_id - 1] = command
        elif packet.TYPE == p.PUBACK and packet.packet_id in self.sent:
            self.queued.remove(self.sent.pop(packet.packet_id))
        return going_on


class Uplink:
    """The transport factory: each window's FakeTransport opens a stream to `broker`."""

    def __init__(self, broker):
        self.broker = broker
        self.streams = Streams()
        self.fail = None  # an error connect() raises: a window that never reaches the broker
        self.released = 0
        self.graceful = 0

    def __call__(self, config, power, ledger, tls):
        return FakeTransport(self, power)


class FakeTransport:
    send_buffer = 512

    def __init__(self, uplink, power):
        self.uplink = uplink
        self.power = power
        self.stream = None

    async def connect(self):
        await self.power.power_on()
        if self.uplink.fail is not None:
            raise self.uplink.fail
        self.stream = await self.uplink.streams.opener(lambda: self.uplink.broker)()
        return self.stream

    async def disconnect(self):
        self.uplink.graceful += 1

    async def release(self):
        await self.power.power_off()
        self.uplink.released += 1

    def power_lost(self):
        self.stream._inbox.shut()  # the link dies with the modem: a waiting read ends


def duty_cycle(broker, folder):
    os.chdir(folder)
    power = FakePower()
    uplink = Uplink(broker)
    book = Ledger()
    book.mark_baseline()
    cycle = app.DutyCycle(CONFIG, sensor=SyntheticSensor(), power=power, book=book, log=lambda line: None,
                          transport=uplink)
    return cycle, uplink, power, book


def in_folder(body):
    here = os.getcwd()
    folder = temp_folder("app")
    try:
        run(body(folder))
    finally:
        os.chdir(here)
        remove_tree(folder)


def published(broker, topic):
    return [json.loads(bytes(packet.payload)) for packet in of_type(broker.received, p.PUBLISH)
            if packet.topic == topic]
