# mqtt_async (micropython-mqtt, of the mqtt_as family) on asyncio. It wants WiFi: a
# stand-in `network` whose interface is always up, and `machine.unique_id` (the unix
# port's machine lacks it). Its socket is the same counted stream to the broker.
import sys

import harness as h


class _Wlan:
    def __init__(self, interface):
        pass

    def isconnected(self):
        return True

    def active(self, *state):
        return True


class _Network:
    STA_IF = 0
    STAT_CONNECTING = 1
    WLAN = _Wlan


class _Machine:
    @staticmethod
    def unique_id():
        return b"bench"


sys.modules["network"] = _Network
sys.modules["machine"] = _Machine

import asyncio  # noqa: E402

import mqtt_async  # noqa: E402
from aharness import Downlink, run_cycles  # noqa: E402


async def main(opts):
    work = h.Workload(opts["tag"], opts["qos"])
    meter = h.Meter(opts["mode"] == "peak")

    async def open_connection(address):
        # address is getaddrinfo's; on the unix port a packed sockaddr, so connect by name
        reader, _ = await asyncio.open_connection(opts["host"], opts["port"])
        return h.AioCountingStream(meter, reader)

    mqtt_async.open_connection = open_connection

    async def cycle():
        downlink = Downlink()
        config = mqtt_async.MQTTConfig()
        config.server = opts["host"]
        config.port = opts["port"]
        config.client_id = work.client_id
        config.keepalive = h.KEEPALIVE_S  # it sends 0 unless a will is set
        config.clean = True
        config.subs_cb = downlink.arrived
        client = mqtt_async.MQTTClient(config)
        await client.connect()
        try:
            await client.subscribe(work.down, work.qos)
            for payload in work.payloads:
                await client.publish(work.up, payload, qos=work.qos)
            await downlink.wait()
        finally:
            await client.disconnect()

    await run_cycles(opts, cycle, meter)


asyncio.run(main(h.options()))
