# Our client over an OS socket to the broker (link=socket), or over a TCP link through
# the SIM7600 emulator's AT stack (link=modem, modem=host:port of its UART).
import asyncio

import harness as h
from aharness import Downlink, run_cycles
from cellmqtt import port
from cellmqtt.mqtt import MqttClient

APN = "internet"


async def _modem(opts, meter):
    from cellmqtt.modem import AtChannel, Sim7600

    uart = h.CountingStream(meter, await port.open_uart({"address": opts["modem"]}), counts=False)
    driver = Sim7600(AtChannel(uart), owns_channel=True)
    driver.start()
    await driver.power_up()
    await driver.attach(APN)
    return driver


async def main(opts):
    work = h.Workload(opts["tag"], opts["qos"])
    meter = h.Meter(opts["mode"] == "peak")
    driver = await _modem(opts, meter) if opts.get("link") == "modem" else None

    async def open_stream():
        if driver is None:
            return await port.open_tcp(opts["broker"])
        return await driver.open_link(opts["host"], opts["port"], owner="MQTT")

    async def cycle():
        downlink = Downlink()
        stream = h.CountingStream(meter, await open_stream())
        client = MqttClient(work.client_id, keepalive_s=h.KEEPALIVE_S)
        await client.connect(stream)
        try:
            await client.subscribe(work.down, work.qos, downlink.arrived)
            for payload in work.payloads:
                await client.publish(work.up, payload, qos=work.qos)
            await downlink.wait()
        finally:
            await client.disconnect()

    try:
        await run_cycles(opts, cycle, meter)
    finally:
        if driver is not None:
            await driver.net_close()
            await driver.close()


asyncio.run(main(h.options()))
