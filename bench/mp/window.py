# One upload window as the duty cycle runs it (cellmqtt.app.DutyCycle._window), with the
# bench's workload as its MQTT session: PWRKEY and STATUS through the emulator's control
# port, bring-up, attach, a link, MQTT, network close, AT+CPOF and STATUS low.
import asyncio

import harness as h
from aharness import Downlink
from cellmqtt import port
from cellmqtt.config import power_lines
from cellmqtt.modem import Sim7600
from cellmqtt.mqtt import MqttClient
from cellmqtt.power import OFF, PowerManager

APN = "internet"


async def session(opts, work, modem):
    downlink = Downlink()
    link = await modem.open_link(opts["host"], opts["port"], owner="MQTT")
    client = MqttClient(work.client_id, keepalive_s=h.KEEPALIVE_S)
    # SUBSCRIBE and the publishes follow CONNECT before its CONNACK [MQTT-3.1.4-5], all
    # in flight at once (up to the client's window): the modem link writes them in as
    # few CIPSENDs, and reads the answers in as few CIPRXGETs, as it can
    await client.connect(link, wait=False)
    try:
        subscribed = asyncio.create_task(client.subscribe(work.down, work.qos, downlink.arrived))
        await asyncio.sleep(0)  # its SUBSCRIBE is written before the publish the downlink answers
        tickets = []
        for payload in work.payloads:
            tickets.append(await client.publish(work.up, payload, qos=work.qos, wait=False))
        await client.accepted()
        await subscribed
        for ticket in tickets:
            await client.acked(ticket)
        await downlink.wait()
    finally:
        await client.disconnect()


async def window(opts):
    port.configure(modem=opts["modem"], control=opts["control"])
    work = h.Workload(opts["tag"], opts["qos"])
    power = PowerManager(power_lines())
    modem = await Sim7600.open({"address": opts["modem"]})
    try:
        async def booted():
            return modem.booted

        await power.power_on(booted)
        await modem.power_up()
        await modem.attach(APN)
        await session(opts, work, modem)
        await modem.net_close()
    finally:
        try:
            if power.state != OFF:
                await power.power_off(modem.power_off)
        finally:
            await modem.close()
    print("RESULT on_ms %d" % power.cycle_on_ms)
    print("RESULT done 1")


asyncio.run(window(h.options()))
