# TLS over sockets (port.open_tls) against mosquitto's TLS listeners, on both runtimes.
# The lanes run under `python -m tools.services -- ...`, which starts a TLS mosquitto
# with a test PKI and exports CELLMQTT_TLS_PKI (the certificate folder), the listeners
# CELLMQTT_TLS_BROKER, _EXPIRED, _WRONG_HOST, _MUTUAL, and CELLMQTT_TLS_CONTROL (a line
# "RESTART" restarts that broker). After every case, failed or not, this process holds
# no more file descriptors than before and the ledger is empty.
import gc
import os

from cellmqtt import port
from cellmqtt.errors import (TLS_EXPIRED, TLS_FAILED, TLS_HOST, TLS_REFUSED, TLS_UNTRUSTED,
                             LinkClosed, TlsError)
from cellmqtt.ledger import Ledger
from cellmqtt.mqtt import MqttClient
from cellmqtt.port._tls import MAX_DETAIL, cause, der_blocks, detail
from support import MICROPYTHON, caught, restart_tls_broker, retained_bytes, run, service, tls_pki

_DISCONNECT_WAIT_MS = 10000  # a restarted broker's reset reaches the reader at once; bound it anyway


def open_fds():
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


async def mqtt_round_trip(stream, book, client_id="tls-test"):
    """CONNECT, a QoS 1 PUBLISH acknowledged, DISCONNECT over `stream`."""
    client = MqttClient(client_id, keepalive_s=30, ledger=book)
    await client.connect(stream)
    try:
        await client.publish("cellmqtt/tls-test/data", b"over TLS", qos=1)
    finally:
        await client.disconnect()


def check_refused(address, reason, server_hostname=None, ca_name="ca.crt"):
    """open_tls fails with TlsError(reason) and leaves no descriptor open."""
    before = open_fds()
    error = run(caught(port.open_tls(service(address), tls_pki(ca_name), server_hostname), TlsError))
    assert error.reason == reason, error
    assert open_fds() == before
    return error


def test_pem_and_der():
    ca = tls_pki("ca.crt")
    blocks = der_blocks(ca + b"\n" + tls_pki("other_ca.crt"))
    assert len(blocks) == 2 and blocks[0] == der_blocks(ca)[0]
    assert blocks[0][0] == 0x30  # an ASN.1 SEQUENCE: the certificate itself
    assert der_blocks(blocks[1]) == [blocks[1]]


def test_causes_named_from_both_stacks():
    cases = (
        (ValueError("\nThe certificate is not correctly signed by the trusted CA\n"), TLS_UNTRUSTED),
        (ValueError("\nThe certificate validity has expired\n"), TLS_EXPIRED),
        (ValueError("\nThe certificate Common Name (CN) does not match with the expected CN\n"), TLS_HOST),
        (OSError(-30592, "SSL - A fatal alert message was received from our peer"), TLS_REFUSED),
        (OSError(104), TLS_REFUSED),
        (OSError(32), TLS_REFUSED),
        (OSError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required"), TLS_REFUSED),
        (OSError(1, "certificate verify failed: unable to get local issuer certificate"), TLS_UNTRUSTED),
        (OSError(-1, "something else"), TLS_FAILED),
    )
    for error, reason in cases:
        assert cause(error) == reason, (error, reason)
    words = detail(ValueError("x" * 500 + "\n"))
    assert len(words) == MAX_DETAIL and "\n" not in words


def test_success_carries_mqtt():
    book = Ledger()
    before = open_fds()

    async def scenario():
        stream = await port.open_tls(service("CELLMQTT_TLS_BROKER"), tls_pki("ca.crt"))
        await mqtt_round_trip(stream, book)

    run(scenario())
    assert len(book) == 0, book.entries()
    assert open_fds() == before


def test_server_name_checked_and_sent():
    book = Ledger()
    run(_round_trip_named("localhost", book))  # the certificate names localhost and 127.0.0.1
    error = check_refused("CELLMQTT_TLS_BROKER", TLS_HOST, server_hostname="wrong.example.com")
    assert "TLS" in str(error)


async def _round_trip_named(name, book):
    stream = await port.open_tls(service("CELLMQTT_TLS_BROKER"), tls_pki("ca.crt"), server_hostname=name)
    await mqtt_round_trip(stream, book)


def test_wrong_ca():
    check_refused("CELLMQTT_TLS_BROKER", TLS_UNTRUSTED, ca_name="other_ca.crt")


def test_expired_certificate():
    check_refused("CELLMQTT_TLS_EXPIRED", TLS_EXPIRED)


def test_certificate_for_another_host():
    check_refused("CELLMQTT_TLS_WRONG_HOST", TLS_HOST)


def test_unreadable_ca():
    before = open_fds()
    error = run(caught(port.open_tls(service("CELLMQTT_TLS_BROKER"), b"-----BEGIN CERTIFICATE-----\n"
                                     b"bm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"), TlsError))
    assert error.reason == TLS_FAILED, error
    assert open_fds() == before


def test_mutual_tls_with_a_client_certificate():
    book = Ledger()
    before = open_fds()

    async def scenario():
        stream = await port.open_tls(service("CELLMQTT_TLS_MUTUAL"), tls_pki("ca.crt"),
                                     cert=tls_pki("client.crt"), key=tls_pki("client.key"))
        await mqtt_round_trip(stream, book, "tls-mutual")

    run(scenario())
    assert len(book) == 0, book.entries()
    assert open_fds() == before


def test_mutual_tls_without_a_client_certificate_is_refused():
    """The refusal may come in the handshake (TLS 1.2) or right after it (TLS 1.3, at
    the first read or write): either way a TlsError naming it, and nothing held."""
    book = Ledger()
    before = open_fds()

    async def scenario():
        stream = await port.open_tls(service("CELLMQTT_TLS_MUTUAL"), tls_pki("ca.crt"))
        await mqtt_round_trip(stream, book, "tls-no-cert")

    error = run(caught(scenario(), TlsError))
    assert error.reason == TLS_REFUSED, error
    assert len(book) == 0, book.entries()
    assert open_fds() == before


def test_broker_restart_mid_session():
    """The broker goes away under a live session: the client ends with LinkClosed and
    holds nothing; a new session to the restarted broker works."""
    book = Ledger()
    before = open_fds()

    async def scenario():
        stream = await port.open_tls(service("CELLMQTT_TLS_BROKER"), tls_pki("ca.crt"))
        client = MqttClient("tls-restart", keepalive_s=30, ledger=book)
        await client.connect(stream)
        try:
            restart_tls_broker()  # blocks: the reader has not yet seen the reset
            await caught(client.publish("cellmqtt/tls-test/data", b"lost", qos=1), LinkClosed)
            await client.wait_disconnected(_DISCONNECT_WAIT_MS)
            assert not client.connected and client.may_reconnect()
        finally:
            await client.disconnect()
        assert len(book) == 0, book.entries()
        await mqtt_round_trip(await port.open_tls(service("CELLMQTT_TLS_BROKER"), tls_pki("ca.crt")), book)

    run(scenario())
    assert len(book) == 0, book.entries()
    assert open_fds() == before


def test_sessions_retain_nothing():
    ca = tls_pki("ca.crt")

    async def session():
        stream = await port.open_tls(service("CELLMQTT_TLS_BROKER"), ca)
        await mqtt_round_trip(stream, Ledger())

    def once():
        run(session())

    retained = retained_bytes(once, 10)
    if MICROPYTHON:
        assert retained == 0, retained
    else:
        assert retained < 64 * 1024, retained
