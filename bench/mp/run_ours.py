# Our client over an OS socket to the broker (link=socket), or over a TCP link through
# the SIM7600 emulator's AT stack (link=modem, modem=host:port of its UART).
import asyncio
import sys

import harness as h
from aharness import Downlink, run_cycles

APN = "internet"
OPTIONS = h.options()


class _Esp32Sys:
    """What cellmqtt.port reads of sys, once, to pick its half: on a socket the client
    gets the port layer an ESP32 loads (port/_mp.py: MicroPython's clock, sleep and gc),
    as mqtt_async gets stand-ins, not the unix port's PC half (emulator wiring, pins, a
    PPP stand-in: 11 KB here) that the modem link needs for its UART."""

    implementation = sys.implementation
    platform = "esp32"


if OPTIONS.get("link") != "modem":
    sys.modules["sys"] = _Esp32Sys
    import cellmqtt.port  # noqa: E402,F401

    del sys.modules["sys"]
from cellmqtt import port  # noqa: E402
from cellmqtt.mqtt import MqttClient  # noqa: E402
from cellmqtt.port.stream import AsyncioStream  # noqa: E402


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
        if driver is None:  # as mqtt_async opens its socket
            reader, writer = await asyncio.open_connection(opts["host"], opts["port"])
            return AsyncioStream(reader, writer)
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


asyncio.run(main(OPTIONS))
