# TLS through the modem's SSL stack on both runtimes: the driver (modem/tls.py) on the
# SIM7600 emulator, to mosquitto's TLS listeners (python -m tools.services starts them:
# CELLMQTT_TLS_BROKER, _EXPIRED, _WRONG_HOST, _MUTUAL, the test PKI in CELLMQTT_TLS_PKI
# and CELLMQTT_TLS_CONTROL to restart the broker). After every scenario the ledger is
# empty and the emulator holds no TLS session.

from cellmqtt.errors import TLS_FAILED, LinkClosed, TlsError
from cellmqtt.ledger import LINK, Ledger
from cellmqtt.mqtt import MqttClient
from support import caught, restart_tls_broker, run, tls_pki, until
from emulator_support import BOUNDED, address, fresh_modem, modem_state, ready_driver, teardown

TLS_BOUNDED = dict(BOUNDED)
for _name in ("+CCHSTART", "+CCHSTOP", "+CCHOPEN", "+CCHSEND", "+CCHRECV", "+CCHCLOSE", "+CCERTDOWN"):
    TLS_BOUNDED[_name] = 10000


def tls_scenario(body):
    fresh_modem()
    book = Ledger()

    async def main():
        driver = await ready_driver(book, TLS_BOUNDED)
        try:
            await body(driver, book)
        finally:
            await teardown(driver)

    run(main())
    assert len(book) == 0, book.entries()
    state = modem_state()
    assert state["tls_sessions"] == [] and state["tls_started"] is False, state


async def open_to(driver, listener, ca="ca.crt", **options):
    host, number = address(listener)
    return await driver.open_tls_link(host, number, ca=tls_pki(ca), owner="MQTT", **options)


async def echo_over_mqtt(link, book, topic):
    client = MqttClient("cellmqtt-mp-tls", keepalive_s=30, ledger=book)
    got = []

    def on_message(topic_name, payload, qos, retain):
        got.append(payload)

    await client.connect(link)
    try:
        await client.subscribe(topic, 1, on_message)
        await client.publish(topic, b"sealed", 1)
        await until(lambda: got, 10000)
    finally:
        await client.disconnect()
    return got


def test_mqtt_through_the_modems_tls():
    async def body(driver, book):
        link = await open_to(driver, "CELLMQTT_TLS_BROKER")
        assert book.count(LINK) == 1 and modem_state()["tls_sessions"] == [0]
        assert await echo_over_mqtt(link, book, "mp/tls/echo") == [b"sealed"]
        assert link.bytes_out > 0 and link.bytes_in > 0

    tls_scenario(body)


def test_each_refusal_is_a_tls_error():
    for listener, ca in (("CELLMQTT_TLS_BROKER", "other_ca.crt"), ("CELLMQTT_TLS_EXPIRED", "ca.crt"),
                         ("CELLMQTT_TLS_WRONG_HOST", "ca.crt"), ("CELLMQTT_TLS_MUTUAL", "ca.crt")):
        async def body(driver, book):
            error = await caught(open_to(driver, listener, ca), TlsError)
            assert error.reason == TLS_FAILED and "err 15" in str(error), (listener, error)
            assert book.count(LINK) == 0

        tls_scenario(body)


def test_mutual_tls_with_a_client_certificate():
    async def body(driver, book):
        link = await open_to(driver, "CELLMQTT_TLS_MUTUAL", cert=tls_pki("client.crt"), key=tls_pki("client.key"))
        assert await echo_over_mqtt(link, book, "mp/tls/mutual") == [b"sealed"]

    tls_scenario(body)


def test_broker_restart_mid_session():
    async def body(driver, book):
        link = await open_to(driver, "CELLMQTT_TLS_BROKER")
        client = MqttClient("cellmqtt-mp-tls-restart", keepalive_s=30, ledger=book)
        await client.connect(link)
        try:
            restart_tls_broker()
            await client.wait_disconnected(10000)
        finally:
            await client.disconnect()
        error = await caught(link.read(10), LinkClosed)
        assert error.reason == "closed by the server"

    tls_scenario(body)
