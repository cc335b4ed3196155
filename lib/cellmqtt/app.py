"""The duty cycle: sample, queue on flash, and when a batch is due, one upload window:
power on, attach, open a link, MQTT connect, publish the queue as QoS 1, take downlink
commands, send a health message, disconnect, power off, feed the memory watchdog.

A window is bounded (upload.window_s) and ends cleanly on every path: the modem is
powered off, nothing stays in the ledger, and what was not acknowledged stays queued
for the next window, which comes after a back-off that doubles with each failure.
"""

import asyncio
import json

from . import errors, memwatch, port  # errors.X, one global for two: 17 fill the module's table
from ._const import const
from .mqtt.client import MqttClient
from .power import ON

SETTINGS_FILE = "settings.json"  # what downlink commands changed, kept across resets
_STATUS_POLL_MS = const(200)  # how soon a brown-out ends the window
_BROWN_OUT = "modem lost power (STATUS low)"
# counters wrap at 2**30 without an int past it: on a 32-bit port that is a heap object
_WRAP = const(0x3FFFFFFF)


class Outcome:
    """What one upload window did."""

    def __init__(self, number):
        self.number = number
        self.started_ms = port.ticks_ms()  # commands are answered up to half the window from here
        self.browned_out = False  # STATUS fell while it ran (DutyCycle._watch_status)
        self.ok = False
        self.delivered = 0
        self.commands = 0
        self.error = None

    def line(self, app):
        verdict = app.watch.verdict
        text = ("window %d %s delivered=%d queued=%d collected=%d used=%d peak=%d largest=%d "
                "ledger=%d on_ms=%d") % (
            self.number, "ok" if self.ok else "fail", self.delivered, app.store.depth, app.collected,
            verdict.used, verdict.peak, verdict.largest, len(app.ledger), app.power.cycle_on_ms)
        if self.error:
            text += " error=" + self.error
        return text


def _joined(head, readings):
    """head, then the readings (at least one) with ", " between them and "]}" after the
    last, in one allocation of its exact size (concatenation made two more copies as
    large, each needing a free block of its own)."""
    at = len(head)
    size = at
    for raw in readings:
        size += len(raw) + 2
    out = bytearray(size)
    out[:at] = head
    for raw in readings:
        out[at:at + len(raw)] = raw
        at += len(raw)
        out[at:at + 2] = b", "
        at += 2
    out[at - 2:] = b"]}"  # in place of the last ", "
    return out


class DutyCycle:
    """`transport`: the factory of each window's way to the broker (transport.py);
    default: the one config["transport"] names."""

    _boot = None  # this boot's number, read from flash once a reading needs it
    # the boot counter on flash: readings taken before the clock is known name their boot
    # (a simulated fleet gives each board its own)
    boot_file = "boot"
    _clock_step = None  # a correction of the RTC past time.max_step_s, for health
    # readings a PUBLISH carries after a window ran out of memory (halved each time, doubled
    # back after each window that went well); None: upload.batch_size
    batch = None

    def __init__(self, config, sensor=None, store=None, power=None, watch=None, book=None,
                 log=print, secrets=None, tls=None, transport=None):
        from .config import cycle_parts  # boot-only code: it goes with that module

        (self.config, self.ledger, self.sensor, self.store, self.power, self.watch, self.period_s, self.inbox,
         self._make_transport) = cycle_parts(config, sensor, store, power, watch, book, transport)
        self.secrets = secrets  # secrets.Secrets (the broker login), or None
        self.tls = tls  # secrets.TlsFiles for broker.tls, or None: plain TCP
        self.log = log
        self.collected = 0  # wraps at 2**30, as does windows
        self.windows = 0
        self.failures = 0  # consecutive failed windows, up to 2**30 - 1
        self._skip = 0  # samples to wait before the next attempt (back-off)
        self._transport = None  # during a window

    # sampling

    def sample(self):
        """Store a reading with its time (ts, UTC epoch seconds) from the RTC, or, while
        the clock is unknown, with its boot and the RTC's own count (rtc_s: seconds since
        power-on, which deep sleep and resets keep; it orders a boot's readings as an
        uptime would), by which _placed() dates it later."""
        self.collected = self.collected + 1 if self.collected < _WRAP else 0
        reading = self.sensor.read()
        ts = port.utc()
        if ts is None:
            if self._boot is None:  # the counter on flash, advanced: one write a boot
                try:
                    with open(self.boot_file) as f:
                        self._boot = int(f.read()) + 1
                except (OSError, ValueError):
                    self._boot = 1
                with open(self.boot_file, "w") as f:
                    f.write(str(self._boot))
                if not port.rtc_memory():  # the RTC's count began (a power-on) before this boot's first reading
                    port.rtc_memory(str(self._boot).encode())
            reading["boot"] = self._boot
            reading["rtc_s"] = port.rtc_s()
        else:
            reading["ts"] = ts
        return self.store.append(reading)

    def upload_due(self):
        if self._skip:
            self._skip -= 1
            return False
        upload = self.config["upload"]
        depth = self.store.depth
        if not depth:
            return False
        every = upload["every_n_readings"]
        period = upload["period_s"]
        return (every is not None and depth >= every) or (
            period is not None and depth * self.period_s >= period)

    # the upload window

    async def window(self):
        """One upload window, watched for a brown-out: once STATUS falls while the modem
        should be on, its AT channel fails every command at once, so the window unwinds
        now instead of waiting out the timeouts of a dead modem."""
        self.windows = self.windows + 1 if self.windows < _WRAP else 0
        outcome = Outcome(self.windows)
        watcher = asyncio.create_task(self._watch_status(outcome))
        try:
            try:
                await asyncio.wait_for(self._window(outcome), self.config["upload"]["window_s"])
            finally:
                watcher.cancel()
                try:
                    await watcher
                except asyncio.CancelledError:
                    pass
                # asyncio's queue links of a finished task may still lead to the window's
                # task and all it held (memwatch.drop_finished_tasks): let go of it now
                del watcher
            if outcome.browned_out:
                raise errors.ModemError(_BROWN_OUT)
            outcome.ok = True
        except asyncio.TimeoutError:
            outcome.error = "window took longer than upload.window_s"
        except MemoryError as error:  # what the window held is garbage now: room to report it
            port.collect()
            outcome.error = "MemoryError: %s" % error
            # a heap too split for this window's batches may stay so: smaller ones fit, and
            # the queue moves instead of failing every window
            self.batch = (self.batch or self.config["upload"]["batch_size"]) // 2 or 1
        except Exception as error:  # a window never takes the device down: reported, retried
            if outcome.browned_out and isinstance(error, errors.CellMqttError):
                error = errors.ModemError(_BROWN_OUT)  # what the dead modem made fail, said as what it was
            outcome.error = "%s: %s" % (type(error).__name__, error)
        if outcome.ok:
            self.failures = 0
            if self.batch is not None:
                self.batch = None if self.batch * 2 >= self.config["upload"]["batch_size"] else self.batch * 2
        else:
            if self.failures < _WRAP:
                self.failures += 1
            retry = self.config["retry"]  # the back-off doubles with each failure
            wait_s = min(retry["backoff_min_s"] << min(self.failures - 1, 16), retry["backoff_max_s"])
            self._skip = wait_s // self.period_s
        await memwatch.drop_finished_tasks()  # or the sample counts this window's objects
        self.watch.sample()
        return outcome

    async def _watch_status(self, outcome):
        """Polls STATUS while a window runs; a fall while the modem should be on is a
        brown-out: the transport's power_lost() fails every command in flight at once."""
        power = self.power
        while True:
            await port.asleep_ms(_STATUS_POLL_MS)
            transport = self._transport
            if transport is not None and power.state == ON and power.status_high() is False:
                outcome.browned_out = True
                transport.power_lost()

    async def _window(self, outcome):
        transport = self._transport = self._make_transport(self.config, self.power, self.ledger, self.tls)
        try:
            stream = await transport.connect()
            await self._session(stream, transport.send_buffer, outcome)
            await transport.disconnect()
        finally:
            try:
                await transport.release()  # still watched: a brown-out now cuts its waits short
            finally:
                self._transport = None

    async def _session(self, stream, send_buffer, outcome):
        broker = self.config["broker"]
        topics = self.config["topics"]
        username, password = (None, None) if self.secrets is None else self.secrets.login()
        self.inbox.open()
        # clean_session=False: the broker keeps QoS 1 commands while the modem sleeps, and
        # those not answered yet (manual_ack: acknowledged only once answered)
        client = MqttClient(broker["client_id"], keepalive_s=broker["keepalive_s"], max_packet=self.inbox.largest,
                            username=username, password=password,
                            clean_session=False, on_message=self.inbox.put, ledger=self.ledger,
                            connect_timeout_ms=broker["timeout_s"] * 1000,
                            ack_timeout_ms=broker["timeout_s"] * 1000,
                            manual_ack=True, on_oversized=self.inbox.put_oversized,
                            max_unacked=self.inbox.limit, send_buffer=send_buffer)

        # The first round of readings follows CONNECT before its CONNACK [MQTT-3.1.4-5]:
        # one send on the modem link, and the CONNACK and their PUBACKs one read.
        await client.connect(stream, wait=False)
        try:
            await self._publish_queue(client, outcome)
            # health goes last with QoS 1: its PUBACK also means that the commands the
            # broker held for us have arrived in the inbox (as many as it sends unanswered)
            await client.publish(topics["health"], self._health(outcome), qos=1)
            # the commands the window got (commands.py, loaded with the first one: a board
            # that gets none never gives its code heap); then the inbox takes no more
            try:
                if self.inbox.items:
                    from .commands import answer

                    await answer(self, client, outcome)
            finally:
                self.inbox.close()
        finally:
            self.inbox.defer(client.held_back)
            await client.disconnect()

    def _placed(self, raw):
        """A queued reading (JSON bytes) with its ts, once the clock is known: one taken
        before gets it from its RTC count and the count's offset to UTC, which RTC memory
        keeps with the count's first boot; one taken before a power loss cannot."""
        if b'"ts"' in raw or port.utc() is None:
            return raw
        kept = port.rtc_memory().split()  # the count's first boot, its offset to UTC
        if len(kept) < 2:
            return raw
        reading = json.loads(raw)
        if reading.get("boot", 0) < int(kept[0]) or "rtc_s" not in reading:
            return raw
        reading["ts"] = reading["rtc_s"] + int(kept[1])
        return json.dumps(reading).encode()

    async def _publish_queue(self, client, outcome):
        # Rounds of up to 4 batches (and about 4 KB of payload) in flight at once: the
        # modem link writes them back to back and reads their PUBACKs together. The store
        # is acknowledged in order, a batch once it and every earlier one have their
        # PUBACK; a failure leaves the rest queued (a batch may go twice, none is lost).
        # The first round goes out before the CONNACK, which is awaited (and the command
        # topic subscribed) before its PUBACKs, so a refusal raises with nothing acknowledged.
        batch_size = self.batch or self.config["upload"]["batch_size"]
        topic = self.config["topics"]["data"]
        head = b'{"device": "' + self.config["device_id"].encode() + b'", "readings": ['
        # The RTC from the network's time (the transport read it in this window), before
        # any reading is placed. A correction past time.max_step_s is applied and reported
        # (health: clock_step_s), as a clock that moves back orders readings wrongly.
        utc = getattr(self._transport, "utc", None)
        if utc is not None:
            rtc = port.utc()
            step = 0 if rtc is None else utc - rtc
            if abs(step) > self.config["time"]["max_step_s"]:
                self._clock_step = step
            if rtc is None:
                # the first sync since the RTC's count began: its offset to UTC, kept with
                # the count's first boot once (a reading sent again keeps its ts)
                kept = port.rtc_memory()
                if kept:
                    port.rtc_memory(kept.split()[0] + b" %d" % (utc - port.rtc_s()))
            if rtc is None or step:
                port.set_utc(utc)
        connecting = True
        while True:
            readings = self.store.peek(4 * batch_size, raw=True)
            if not readings and not connecting:
                return
            sent = []  # (ticket, last seq, readings) of the round, oldest first
            size = 0
            failure = None
            try:
                while readings and size < 4096:
                    batch = readings[:batch_size]
                    del readings[:batch_size]
                    last_seq = batch[-1][0]
                    for i in range(len(batch)):  # (seq, raw) -> placed raw, in place
                        batch[i] = self._placed(batch[i][1])
                    payload = _joined(head, batch)
                    size += len(payload)
                    ticket = await client.publish(topic, payload, qos=1, wait=False)
                    sent.append((ticket, last_seq, len(batch)))
                    batch = payload = None
                readings = None
                self.watch.observe_peak()
            except Exception as error:  # those acknowledged already leave the queue
                failure = error
            if connecting:  # a refused or failed CONNACK raises before any of the round
                connecting = False
                self.watch.observe_peak()
                if not await client.accepted():  # a kept session keeps its subscription (and sends no retained again)
                    await client.subscribe(self.config["topics"]["command"], 1, self.inbox.put)
            for ticket, seq, count in sent:
                if failure is None:
                    await client.acked(ticket)
                elif not ticket.done:
                    break
                self.store.ack(seq)
                outcome.delivered += count
            if failure is not None:
                raise failure

    def _health(self, outcome):
        verdict = self.watch.verdict
        health = {
            "device": self.config["device_id"], "window": outcome.number,
            "mem_used": verdict.used, "mem_peak": verdict.peak, "mem_largest_free": verdict.largest,
            "mem_status": verdict.status,
            "ledger": len(self.ledger), "queue": self.store.depth, "dropped": self.store.dropped,
            "modem_on_ms": self.power.cycle_on_ms, "modem_total_on_ms": self.power.total_on_ms,
            "failures": self.failures, "delivered": outcome.delivered,
            "commands_deferred": self.inbox.deferred, "commands_oversized": self.inbox.oversized,
        }
        if self._clock_step is not None:
            health["clock_step_s"] = self._clock_step
            self._clock_step = None
        return json.dumps(health)

    # the loop

    async def run(self, windows=None):
        """Sample every period; upload when due; `windows` bounds the loop (None: forever)."""
        deep = self.config["sleep"]["mode"] == "deep"
        done = 0
        while windows is None or done < windows:
            self.sample()
            if self.upload_due():
                outcome = await self.window()
                done += 1
                line = outcome.line(self)
                self.log(line)
                if deep:  # for `free` and the rest while nothing runs (shell.py)
                    from .shell import record

                    record(line)
                if self.watch.verdict.should_reset:
                    self.log("memory watchdog: %r, resetting" % self.watch.verdict)
                    port.reset()
            if windows is not None and done >= windows:
                return
            if deep:
                port.deep_sleep(self.period_s * 1000)  # wakes as a reset: state is on flash
            await port.asleep_ms(self.period_s * 1000)


def main(config_path="config.json", windows=None):
    """main.py's body: load the configuration (a bad one stops with its message) and run.
    The checking code is unloaded once the duty cycle is built (it is the largest module
    and a board needs it only at boot): loaded first and dropped last, it leaves one
    large free block behind instead of holes between the modules loaded after it."""
    from . import config as checker
    from . import unload

    try:
        cycle = checker.start(config_path)
    finally:
        del checker  # the module goes once nothing refers to it
        unload("cellmqtt.config")
        port.collect()
    if cycle is None:
        return
    from .repl import beside  # boot.py loaded it: the console answers while windows run

    asyncio.run(beside(cycle.run(windows)))
