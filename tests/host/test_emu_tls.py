# TLS through the modem's SSL stack end to end: the driver (modem/tls.py) on the
# emulator (tools/sim7600_emu/tls.py, real TLS with Python's ssl) to mosquitto's TLS
# listeners with certificates made here. Each way of ending leaves no session on
# either side: the emulator's STATE lists none and the ledger is back at its baseline.
import asyncio

import pytest

from cellmqtt import port
from cellmqtt.errors import TLS_FAILED, LinkClosed, TlsError
from cellmqtt.ledger import Ledger
from cellmqtt.modem import AtChannel, Sim7600
from cellmqtt.modem.netstat import read_tables
from cellmqtt.modem.tls import file_name
from cellmqtt.mqtt import MqttClient
from tools.certs import make_pki
from tools.services import TlsMosquitto
from tools.sim7600_emu.threaded import ThreadedEmulator

BOUND_S = 30  # one test's work against loopback services takes a few seconds at most


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def tls_port(broker, name):
    return int(broker.tls[name].rpartition(":")[2])


@pytest.fixture(scope="module")
def broker(pki):
    server = TlsMosquitto(pki).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def emu():
    with ThreadedEmulator(power_on=True, time_scale=0) as emulator:
        yield emulator
        assert emulator.errors == []


def read(path):
    with open(path, "rb") as f:
        return f.read()


def run_with_driver(emu, work):
    """work(driver, book) on a fresh driver on the emulator's UART (attached, network
    open); afterwards NETCLOSE, and the ledger and the modem's tables must be empty."""
    book = Ledger()

    async def main():
        driver = Sim7600(AtChannel(await port.open_tcp(emu.uart_address), ledger=book), ledger=book,
                         owns_channel=True)
        driver.start()
        try:
            await driver.power_up()
            await driver.attach("internet")
            baseline = len(book)
            result = await work(driver, book)
            assert len(book) == baseline, book.entries()
            state = emu.state()
            assert state["tls_sessions"] == [] and state["tls_started"] is False, state
            await driver.net_close()
            return result
        finally:
            await driver.close()

    result = asyncio.run(asyncio.wait_for(main(), BOUND_S))
    assert len(book) == 0, book.entries()
    assert emu.state()["tls_sessions"] == []
    return result


async def round_trip(stream, book, topic):
    """MQTT over the stream: subscribe, publish QoS 1 to ourselves, get it back."""
    client = MqttClient("cellmqtt-tls-test", keepalive_s=30, ledger=book)
    got = asyncio.Event()
    received = []

    def on_message(topic_name, payload, qos, retain):
        received.append(payload)
        got.set()

    await client.connect(stream)
    try:
        await client.subscribe(topic, 1, on_message)
        await client.publish(topic, b"over the modem's TLS", 1)
        await asyncio.wait_for(got.wait(), 10)
    finally:
        await client.disconnect()
    return received


def test_mqtt_over_modem_tls_and_the_ca_uploaded_once(emu, broker, pki):
    emu.reset()
    ca = read(pki["ca"])

    async def work(driver, book):
        for _ in range(2):
            link = await driver.open_tls_link("127.0.0.1", tls_port(broker, "good"), ca=ca, owner="MQTT")
            assert [entry.detail for entry in book.entries() if entry.owner == "MQTT"] == [
                "tls #0 127.0.0.1:%d" % tls_port(broker, "good")]
            assert emu.state()["tls_sessions"] == [0]
            assert await round_trip(link, book, "tls/modem/echo") == [b"over the modem's TLS"]
        return emu.state()["tls_files"]

    assert run_with_driver(emu, work) == [file_name("ca", ca)]


def test_localhost_by_name_verifies_too(emu, broker, pki):
    emu.reset()

    async def work(driver, book):
        link = await driver.open_tls_link("localhost", tls_port(broker, "good"), ca=read(pki["ca"]))
        await link.close()

    run_with_driver(emu, work)


@pytest.mark.parametrize("listener, ca, cause", [
    ("good", "other_ca", "certificate chain"),  # the broker's chain ends in a CA we do not trust
    ("expired", "ca", "certificate has expired"),
    ("wrong_host", "ca", "mismatch"),
    ("mutual", "ca", "alert handshake failure")])  # no client certificate: the broker refuses
def test_refused_handshakes_are_tls_errors_and_leave_nothing_open(emu, broker, pki, listener, ca, cause, caplog):
    # the modem says only "+CCHOPEN: 0,15"; the emulator's log says why, as a check
    # that each case fails for its own reason
    emu.reset()

    async def work(driver, book):
        try:
            await driver.open_tls_link("127.0.0.1", tls_port(broker, listener), ca=read(pki[ca]))
        except TlsError as error:
            return error
        raise AssertionError("no TlsError")

    error = run_with_driver(emu, work)
    assert error.reason == TLS_FAILED and "err 15" in str(error)
    assert cause in caplog.text


def test_mutual_tls_with_a_client_certificate(emu, broker, pki):
    emu.reset()

    async def work(driver, book):
        link = await driver.open_tls_link("127.0.0.1", tls_port(broker, "mutual"), ca=read(pki["ca"]),
                                          cert=read(pki["client_cert"]), key=read(pki["client_key"]))
        return await round_trip(link, book, "tls/modem/mutual")

    assert run_with_driver(emu, work) == [b"over the modem's TLS"]
    assert len(emu.state()["tls_files"]) == 3


def test_broker_restart_mid_session_is_link_closed(emu, pki):
    emu.reset()
    restarting = TlsMosquitto(pki).start()
    try:
        async def work(driver, book):
            link = await driver.open_tls_link("127.0.0.1", tls_port(restarting, "good"), ca=read(pki["ca"]))
            client = MqttClient("cellmqtt-tls-restart", keepalive_s=30, ledger=book)
            await client.connect(link)
            await asyncio.get_running_loop().run_in_executor(None, restarting.restart)
            try:
                await asyncio.wait_for(client.wait_disconnected(), 10)
            finally:
                await client.disconnect()
            with pytest.raises(LinkClosed, match="closed by the server"):
                await link.read(10)

        run_with_driver(emu, work)
    finally:
        restarting.stop()


def test_a_session_left_open_shows_in_the_modem_state_until_closed(emu, broker, pki):
    # the check the other tests rely on: the emulator reports what the driver holds
    emu.reset()

    async def work(driver, book):
        link = await driver.open_tls_link("127.0.0.1", tls_port(broker, "good"), ca=read(pki["ca"]))
        state = emu.state()
        assert state["tls_sessions"] == [0] and state["tls_started"] is True
        table = await read_tables(driver)
        assert table == {} and driver.tls.modem_table == {0: ("127.0.0.1", tls_port(broker, "good"))}
        await link.close()

    run_with_driver(emu, work)


def test_restart_and_power_loss_clear_sessions_but_not_the_files(emu, broker, pki):
    emu.reset()
    ca = read(pki["ca"])

    async def work(driver, book):
        link = await driver.open_tls_link("127.0.0.1", tls_port(broker, "good"), ca=ca)
        await driver.channel.command("AT+CRESET")  # RDY follows at once (time scale 0)
        with pytest.raises(LinkClosed, match="modem restarted"):
            await link.read(10)
        await link.close()  # nothing left to close on the modem
        assert driver.tls.started is False

    run_with_driver(emu, work)
    assert emu.state()["tls_files"] == [file_name("ca", ca)]

    async def power_loss():
        driver = Sim7600(AtChannel(await port.open_tcp(emu.uart_address), ledger=Ledger()), ledger=Ledger(),
                         owns_channel=True)
        driver.start()
        try:
            await driver.power_up()
            await driver.attach("internet")
            await driver.open_tls_link("127.0.0.1", tls_port(broker, "good"), ca=ca)
            assert emu.state()["tls_sessions"] == [0]
            assert emu.control("POWER OFF") == "OK"
            state = emu.state()
            assert state["tls_sessions"] == [] and state["tls_started"] is False
            assert emu.control("POWER ON") == "OK" and emu.state()["tls_files"] == [file_name("ca", ca)]
            driver.channel.power_lost()  # what the power manager does when STATUS falls
        finally:
            await driver.close()

    asyncio.run(asyncio.wait_for(power_loss(), BOUND_S))
