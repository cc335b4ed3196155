# The duty cycle on fakes, in both lanes: DutyCycle with a fake transport (its one
# seam) to the in-memory broker, a fake power manager, a real store on a temporary
# folder. Back-off, delete-after-PUBACK, downlink commands and a brown-out, in seconds.
import asyncio
import json

from cellmqtt import app
from cellmqtt.errors import LinkClosed
from cellmqtt.mqtt import packets as p
from cellmqtt.power import OFF
from app_fakes import COMMAND, CONFIG, STATUS, CommandBroker, duty_cycle, in_folder, published
from mqtt_fakes import of_type
from support import until


async def _after_the_window(cycle, uplink, power, book):
    """Whatever the window did: its transport released, the modem off, nothing held."""
    assert uplink.released == cycle.windows and power.state == OFF
    assert book.at_baseline(), book.entries()
    assert cycle._transport is None
    await uplink.streams.settle()


def test_a_batch_payload_is_its_readings_in_one_exact_allocation():
    head = b'{"device": "d", "readings": ['
    readings = [b'{"seq": 1}', b'{"seq": 22, "t": 3}', b"7"]
    payload = app._joined(head, readings)
    assert payload == head + b", ".join(readings) + b"]}"  # as the concatenation made it
    assert json.loads(payload)["readings"] == [{"seq": 1}, {"seq": 22, "t": 3}, 7]
    assert bytes(app._joined(head, [b"{}"])) == head + b"{}]}"


def test_a_window_delivers_the_queue_and_deletes_it_after_puback():
    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = duty_cycle(broker, folder)
        seqs = [cycle.sample() for _ in range(3)]
        outcome = await cycle.window()
        assert outcome.ok and outcome.delivered == 3, outcome.error
        assert cycle.store.depth == 0 and uplink.graceful == 1
        data = published(broker, CONFIG["topics"]["data"])
        assert [reading["seq"] for reading in data[0]["readings"]] == seqs
        health = published(broker, CONFIG["topics"]["health"])[0]
        assert health["delivered"] == 3 and health["queue"] == 0 and health["device"] == "fake01"
        assert of_type(broker.received, p.SUBSCRIBE) == []  # the broker kept the session
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


def test_a_reading_stays_queued_until_its_puback():
    async def body(folder):
        broker = CommandBroker(withhold=(p.PUBACK,))
        cycle, uplink, power, book = duty_cycle(broker, folder)
        cycle.sample()
        cycle.sample()
        failed = await cycle.window()
        assert not failed.ok and "PUBACK" in failed.error, failed.error
        assert cycle.store.depth == 2 and uplink.graceful == 0
        await _after_the_window(cycle, uplink, power, book)
        uplink.broker = CommandBroker()
        cycle._skip = 0
        done = await cycle.window()
        assert done.ok and done.delivered == 2 and cycle.store.depth == 0, done.error
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


class RoundBroker(CommandBroker):
    """Answers the data PUBLISHes only once `together` of them (or the last, by `upto`)
    came, as PUBACKs in a row, never the one numbered `lost` (from 1)."""

    def __init__(self, together, lost=None):
        CommandBroker.__init__(self)
        self.together = together
        self.lost = lost
        self.held = []
        self.count = 0

    async def _answer(self, peer, packet):
        if packet.TYPE != p.PUBLISH or packet.topic != CONFIG["topics"]["data"]:
            return await CommandBroker._answer(self, peer, packet)
        self.count += 1
        if self.count != self.lost:
            self.held.append(packet.packet_id)
        if self.count % self.together == 0 or len(json.loads(bytes(packet.payload))["readings"]) < 20:
            for packet_id in self.held:
                await peer.send(p.Bare(p.PUBACK, packet_id))
            self.held = []
        return True


def test_a_backlog_goes_out_in_rounds_of_batches_in_flight_together():
    async def body(folder):
        broker = RoundBroker(together=3)
        cycle, uplink, power, book = duty_cycle(broker, folder)
        seqs = [cycle.sample() for _ in range(50)]  # batches of 20, 20 and 10
        outcome = await cycle.window()  # one at a time would wait for the first PUBACK
        assert outcome.ok and outcome.delivered == 50 and cycle.store.depth == 0, outcome.error
        data = published(broker, CONFIG["topics"]["data"])
        assert [reading["seq"] for batch in data for reading in batch["readings"]] == seqs
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


def test_after_a_window_out_of_memory_batches_are_halved_then_grow_back():
    """A heap too split for a batch's PUBLISH stays so across windows: the next windows
    send smaller batches (the queue moves instead of failing every window), and the
    batch grows back after each window that went well."""
    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = duty_cycle(broker, folder)

        async def starved(client, outcome):
            raise MemoryError("memory allocation failed, allocating 1722 bytes")

        def sizes():
            return [len(batch["readings"]) for batch in published(broker, CONFIG["topics"]["data"])]

        for _ in range(25):
            cycle.sample()
        for _ in range(2):
            cycle._publish_queue = starved
            failed = await cycle.window()
            assert not failed.ok and failed.error.startswith("MemoryError: "), failed.error
            cycle._skip = 0
        del cycle._publish_queue
        assert cycle.batch == CONFIG["upload"]["batch_size"] // 4 == 5 and cycle.store.depth == 25
        outcome = await cycle.window()
        assert outcome.ok and outcome.delivered == 25 and sizes() == [5] * 5, (outcome.error, sizes())
        assert cycle.batch == 10
        for _ in range(25):
            cycle.sample()
        broker.received.clear()
        assert (await cycle.window()).ok and sizes() == [10, 10, 5] and cycle.batch is None, sizes()
        broker.received.clear()
        for _ in range(25):
            cycle.sample()
        assert (await cycle.window()).ok and sizes() == [20, 5], sizes()
        assert cycle.store.depth == 0
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


def test_the_store_is_acknowledged_in_order_and_a_missing_puback_keeps_the_rest():
    async def body(folder):
        broker = RoundBroker(together=3, lost=2)  # the first and third acknowledged
        cycle, uplink, power, book = duty_cycle(broker, folder)
        seqs = [cycle.sample() for _ in range(50)]
        failed = await cycle.window()
        assert not failed.ok and "PUBACK" in failed.error, failed.error
        assert failed.delivered == 20 and cycle.store.depth == 30  # the third is sent again
        await _after_the_window(cycle, uplink, power, book)
        uplink.broker = CommandBroker()
        cycle._skip = 0
        done = await cycle.window()
        assert done.ok and done.delivered == 30 and cycle.store.depth == 0, done.error
        data = published(uplink.broker, CONFIG["topics"]["data"])
        assert [reading["seq"] for batch in data for reading in batch["readings"]] == seqs[20:]
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


def test_a_failure_mid_round_loses_nothing():
    async def body(folder):
        broker = CommandBroker()
        cycle, uplink, power, book = duty_cycle(broker, folder)
        for _ in range(50):
            cycle.sample()
        real = cycle._placed
        placed = []

        def placed_then_fail(raw):
            placed.append(raw)
            if len(placed) == 41:  # building the third batch
                raise LinkClosed("gone")
            return real(raw)

        cycle._placed = placed_then_fail
        failed = await cycle.window()
        assert not failed.ok and "gone" in failed.error, failed.error
        # the two sent may have their PUBACKs already, the third is not sent
        assert cycle.store.depth + failed.delivered == 50 and cycle.store.depth >= 30
        await _after_the_window(cycle, uplink, power, book)  # the broker has read all that came
        assert len(published(broker, CONFIG["topics"]["data"])) == 2
        cycle._placed = real
        cycle._skip = 0
        done = await cycle.window()
        assert done.ok and cycle.store.depth == 0, done.error
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


def test_failed_windows_back_off_doubling_up_to_the_bound():
    async def body(folder):
        cycle, uplink, power, book = duty_cycle(CommandBroker(), folder)
        uplink.fail = LinkClosed("no network")
        waits = []
        for _ in range(4):
            cycle.sample()
            outcome = await cycle.window()
            assert not outcome.ok and "no network" in outcome.error
            waits.append(cycle._skip)
            skipped = 0
            while not cycle.upload_due():
                cycle.sample()
                skipped += 1
            assert skipped == waits[-1]
        period = CONFIG["sampling"]["period_s"]
        assert waits == [120 // period, 240 // period, 480 // period, 480 // period]
        assert cycle.failures == 4 and cycle.store.depth == cycle.collected
        uplink.fail = None
        assert (await cycle.window()).ok and cycle.failures == 0 and cycle.store.depth == 0
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


def test_commands_are_answered_then_acknowledged_and_the_rest_wait_at_the_broker():
    async def body(folder):
        commands = [b'{"cmd": "set_period", "period_s": 120}', b"not json", b'{"cmd": "status"}',
                    b'{"cmd": "set_period", "period_s": 300}']
        broker = CommandBroker(commands)
        cycle, uplink, power, book = duty_cycle(broker, folder)
        cycle.sample()
        first = await cycle.window()
        assert first.ok and first.commands == 3, first.error
        replies = published(broker, STATUS)
        assert replies[0]["ok"] and replies[0]["period_s"] == 120 and cycle.period_s == 120
        assert not replies[1]["ok"] and replies[1]["error"] == "not JSON"
        assert replies[2]["ok"] and replies[2]["cmd"] == "status"
        # each PUBACK of a command follows its reply; the fourth stays at the broker
        kinds = [(packet.TYPE, getattr(packet, "topic", None)) for packet in broker.received
                 if packet.TYPE == p.PUBACK or getattr(packet, "topic", None) == STATUS]
        assert kinds == [(p.PUBLISH, STATUS), (p.PUBACK, None)] * 3
        assert broker.queued == commands[3:] and cycle.inbox.deferred == 1
        cycle.sample()
        second = await cycle.window()
        assert second.ok and second.commands == 1 and cycle.period_s == 300
        assert broker.queued == []
        with open(app.SETTINGS_FILE) as f:
            assert json.loads(f.read()) == {"period_s": 300}
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


def test_a_command_over_the_limit_is_skipped_unread_and_answered_by_its_size():
    async def body(folder):
        # 300 bytes: over the command limit, and more than the client reads (max_packet)
        big = b'{"cmd": "status", "pad": "' + b"x" * 271 + b'"}'
        broker = CommandBroker([big, b'{"cmd": "status"}'])
        cycle, uplink, power, book = duty_cycle(broker, folder)
        cycle.sample()
        outcome = await cycle.window()
        assert outcome.ok and outcome.commands == 2, outcome.error
        assert cycle.inbox.oversized == 1  # read past, never held whole
        size = 1 + 2 + 2 + len(COMMAND) + 2 + len(big)  # the PUBLISH, header to payload
        replies = published(broker, STATUS)
        assert replies[0] == {"ok": False, "error": "command of %d bytes is larger than the limit of 256 bytes" % size}
        assert replies[1]["ok"] and broker.queued == []  # both acknowledged once answered
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


def test_a_window_past_upload_window_s_ends_released_with_the_queue_intact():
    async def body(folder):
        broker = CommandBroker(withhold=(p.PUBACK,))  # the publish waits out broker.timeout_s
        cycle, uplink, power, book = duty_cycle(broker, folder)
        cycle.config = dict(CONFIG, upload=dict(CONFIG["upload"], window_s=0.2))
        cycle.sample()
        outcome = await asyncio.wait_for(cycle.window(), 5)
        assert not outcome.ok and outcome.error == "window took longer than upload.window_s", outcome.error
        assert cycle.store.depth == 1 and cycle.failures == 1 and not outcome.browned_out
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


def test_a_brown_out_ends_the_window_at_once_with_the_queue_intact():
    async def body(folder):
        broker = CommandBroker(withhold=(p.PUBACK,))
        cycle, uplink, power, book = duty_cycle(broker, folder)
        cycle.sample()
        cycle.sample()
        window = asyncio.create_task(cycle.window())
        await until(lambda: of_type(broker.received, p.PUBLISH))  # the batch is out, its PUBACK withheld
        power.status = False
        outcome = await asyncio.wait_for(window, 0.9)  # before the 1 s PUBACK wait runs out
        assert not outcome.ok and "lost power" in outcome.error, outcome.error
        assert cycle.store.depth == 2
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


class LateConnack(CommandBroker):
    """Answers CONNECT only once the next packet came: a client that waits for the
    CONNACK before it publishes never gets one. `early`: the types that came between."""

    def __init__(self, **options):
        CommandBroker.__init__(self, **options)
        self.connect = None
        self.early = []

    async def _answer(self, peer, packet):
        if packet.TYPE == p.CONNECT:
            self.connect = packet
            return True
        if self.connect is not None:
            self.early.append(packet.TYPE)
            connect, self.connect = self.connect, None
            await CommandBroker._answer(self, peer, connect)
        return await CommandBroker._answer(self, peer, packet)


def test_the_first_round_follows_connect_before_the_connack():
    async def body(folder):
        cycle, uplink, power, book = duty_cycle(LateConnack(), folder)
        uplink.broker.session_present = False  # a new session: the client subscribes after the CONNACK
        seqs = [cycle.sample() for _ in range(3)]
        outcome = await cycle.window()
        assert outcome.ok and outcome.delivered == 3 and cycle.store.depth == 0, outcome.error
        assert uplink.broker.early == [p.PUBLISH]  # the batch, before the CONNACK
        kinds = [packet.TYPE for packet in uplink.broker.received]
        assert kinds == [p.CONNECT, p.PUBLISH, p.SUBSCRIBE, p.PUBLISH, p.DISCONNECT], kinds
        batch = published(uplink.broker, CONFIG["topics"]["data"])[0]
        assert [reading["seq"] for reading in batch["readings"]] == seqs
        assert published(uplink.broker, CONFIG["topics"]["health"])[0]["delivered"] == 3
        await _after_the_window(cycle, uplink, power, book)

    in_folder(body)


def test_a_refused_connack_leaves_every_reading_queued():
    async def body(folder):
        broker = CommandBroker(code=5)  # not authorized: it reads nothing after CONNECT
        cycle, uplink, power, book = duty_cycle(broker, folder)
        for _ in range(50):
            cycle.sample()
        failed = await cycle.window()
        assert not failed.ok and "not authorized" in failed.error, failed.error
        assert failed.delivered == 0 and cycle.store.depth == 50
        assert [packet.TYPE for packet in broker.received] == [p.CONNECT]
        await _after_the_window(cycle, uplink, power, book)
        uplink.broker = CommandBroker()
        cycle._skip = 0
        assert (await cycle.window()).delivered == 50 and cycle.store.depth == 0

    in_folder(body)
