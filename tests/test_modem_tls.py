# TLS through the modem's SSL stack (modem/tls.py) against a scripted modem: files,
# contexts, the service, each answer and URC form of open/send/receive/close, and the
# ledger back at its baseline on every path.
import asyncio

from cellmqtt import shell
from cellmqtt.errors import (TLS_FAILED, AtError, ConfigError, LimitExceeded, LinkClosed, NetError,
                             StateError, Timeout, TlsError)
from cellmqtt.ledger import HANDLER, LINK, Ledger
from cellmqtt.modem.link import CLOSE_WAIT, CLOSED, ESTABLISHED
from cellmqtt.modem.netstat import read_tables, rows
from cellmqtt.modem.tls import file_name
from cellmqtt.modem.tls_session import SEND_CHUNK
from modem_fakes import FakeModem, drive, driver_with, framed, ok, script_net_close, script_net_open
from support import MICROPYTHON, caught, retained_bytes, run

CA = b"-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"
OTHER_CA = b"-----BEGIN CERTIFICATE-----\nMIIBotherCA\n-----END CERTIFICATE-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nMIIBclient\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nMIIEsecret\n-----END PRIVATE KEY-----\n"
HOST = b"127.0.0.1"
PORT = 8883


async def settle(fake):
    while fake.queued():
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)


def script_files(fake, files, have=()):
    """AT+CCERTLIST (the modem holds `have`), then an upload of each file it lacks."""
    fake.expect(b"AT+CCERTLIST", ok(*[b'+CCERTLIST: "%s"' % name.encode() for name in have]))
    for kind, data in files:
        name = file_name(kind, data).encode()
        if name.decode() not in have:
            fake.expect(b'AT+CCERTDOWN="%s",%d' % (name, len(data)), b"\r\n>")
            fake.expect_data(data, ok())


def script_context(fake, number=0, ca=CA, cert=None, key=None, sni=ok()):
    fake.expect(b'AT+CSSLCFG="sslversion",%d,4' % number, ok())
    fake.expect(b'AT+CSSLCFG="authmode",%d,%d' % (number, 1 if cert is None else 2), ok())
    fake.expect(b'AT+CSSLCFG="cacert",%d,"%s"' % (number, file_name("ca", ca).encode()), ok())
    if cert is not None:
        fake.expect(b'AT+CSSLCFG="clientcert",%d,"%s"' % (number, file_name("cert", cert).encode()), ok())
        fake.expect(b'AT+CSSLCFG="clientkey",%d,"%s"' % (number, file_name("key", key).encode()), ok())
    fake.expect(b'AT+CSSLCFG="enableSNI",%d,1' % number, sni)


def script_start(fake, answer=None):
    fake.expect(b"AT+CCHSET=1,1", ok())
    fake.expect(b"AT+CCHSTART", ok() + framed(b"+CCHSTART: 0") if answer is None else answer)


def script_session(fake, number=0, answer=None):
    fake.expect(b"AT+CCHSSLCFG=%d,%d" % (number, number), ok())
    command = b'AT+CCHOPEN=%d,"%s",%d,2' % (number, HOST, PORT)
    fake.expect(command, ok() + framed(b"+CCHOPEN: %d,0" % number) if answer is None else answer)


def script_first_open(fake, number=0):
    script_files(fake, [("ca", CA)])
    script_context(fake, number)
    script_start(fake)
    script_session(fake, number)


def script_send(fake, number, data, err=0):
    fake.expect(b"AT+CCHSEND=%d,%d" % (number, len(data)), b"\r\n>")
    fake.expect_data(data, ok() + framed(b"+CCHSEND: %d,%d" % (number, err)))


def recv_reply(number, data, ok_first=True):
    body = (b"\r\n+CCHRECV: DATA,%d,%d\r\n" % (number, len(data)) + data if data else b"")
    end = b"\r\n+CCHRECV: %d,0\r\n" % number
    return b"\r\nOK\r\n" + body + end if ok_first else body + end + b"\r\nOK\r\n"


def script_receive(fake, number, data, size=1500, ok_first=True):
    fake.expect(b"AT+CCHRECV=%d,%d" % (number, size), recv_reply(number, data, ok_first))


def script_close(fake, number=0, last=True):
    fake.expect(b"AT+CCHCLOSE=%d" % number, ok() + framed(b"+CCHCLOSE: %d,0" % number))
    if last:
        script_stop(fake)


def script_stop(fake):
    fake.expect(b"AT+CCHSTOP", ok(b"+CCHSTOP: 0"))


async def open_tls(driver, **options):
    return await driver.open_tls_link("127.0.0.1", PORT, ca=options.pop("ca", CA), **options)


def test_open_send_receive_close():
    async def body(fake, driver):
        book = driver.ledger
        baseline = len(book)
        script_first_open(fake)
        link = await open_tls(driver, owner="MQTT")
        assert link.state == ESTABLISHED and link.number == 0
        held = [(entry.kind, entry.owner, entry.detail) for entry in book.entries()][baseline:]
        assert held == [(LINK, "MQTT", "tls #0 127.0.0.1:8883"), (HANDLER, "AT", "URC sim7600 tls")]
        script_send(fake, 0, b"\x10\x0c\x00\x04MQTT")
        await link.write(b"\x10\x0c\x00\x04MQTT")
        fake.push(framed(b"+CCHEVENT: 0,RECV EVENT"))
        script_receive(fake, 0, b"\x20\x02\x00\x00")
        assert await link.read(100) == b"\x20\x02\x00\x00"
        assert (link.bytes_out, link.bytes_in) == (8, 4)
        script_close(fake)
        await link.close()
        assert link.state == CLOSED and len(book) == baseline and not driver.tls.started
        await link.close()  # idempotent: nothing more on the wire

    drive(body)


def test_received_bytes_are_read_by_length_in_both_orders():
    tricky = b"\r\nOK\r\n+CCH_PEER_CLOSED: 0\r\n+CCHRECV: 0,4\r\nERROR\r\n>"

    async def body(fake, driver):
        script_first_open(fake)
        link = await open_tls(driver)
        for ok_first in (True, False):
            fake.push(framed(b"+CCHEVENT: 0,RECV EVENT"))
            script_receive(fake, 0, tricky, ok_first=ok_first)
            got = await link.read(7)
            # the read holds the answer's bytes alone, not a buffer of a whole read (1500)
            assert len(link._buf) == len(tricky)
            while len(got) < len(tricky):
                got += await link.read(7)
            assert got == tricky and link.state == ESTABLISHED
        script_close(fake)
        await link.close()

    drive(body)


def test_a_full_read_asks_again_and_an_empty_cache_ends_it():
    async def body(fake, driver):
        script_first_open(fake)
        link = await open_tls(driver)
        fake.push(framed(b"+CCHEVENT: 0,RECV EVENT"))
        script_receive(fake, 0, b"a" * 1500)
        assert await link.read(2000) == b"a" * 1500
        script_receive(fake, 0, b"")  # the cache held exactly 1500: an empty answer
        fake.push(framed(b"+CCHEVENT: 0,RECV EVENT"))
        script_receive(fake, 0, b"b" * 10)
        assert await link.read(2000) == b"b" * 10
        fake.push(framed(b"+CCHEVENT: 0,RECV EVENT"))
        # some firmware answers an empty cache with ERROR; new bytes bring a new event
        fake.expect(b"AT+CCHRECV=0,1500", framed(b"ERROR", b"+CCHEVENT: 0,RECV EVENT"))
        script_receive(fake, 0, b"c")
        assert await link.read(10) == b"c"
        script_close(fake)
        await link.close()

    drive(body)


def test_files_are_uploaded_once_and_named_by_content():
    async def body(fake, driver):
        script_first_open(fake)
        link = await open_tls(driver)
        script_close(fake)
        await link.close()
        # the same CA: no listing, no upload, no context; the service starts again
        script_start(fake)
        script_session(fake)
        link = await open_tls(driver)
        script_close(fake)
        await link.close()
        # a changed CA is a new file and a new context
        fake.expect(b'AT+CCERTDOWN="%s",%d' % (file_name("ca", OTHER_CA).encode(), len(OTHER_CA)), b"\r\n>")
        fake.expect_data(OTHER_CA, ok())
        script_context(fake, ca=OTHER_CA)
        script_start(fake)
        script_session(fake)
        link = await open_tls(driver, ca=OTHER_CA)
        script_close(fake)
        await link.close()

    drive(body)
    assert file_name("ca", CA) != file_name("ca", OTHER_CA)
    assert file_name("ca", CA).startswith("ca-") and file_name("ca", CA).endswith(".pem")


def test_a_file_the_modem_holds_is_not_sent_and_sni_may_be_missing():
    async def body(fake, driver):
        script_files(fake, [("ca", CA)], have=("other.pem", file_name("ca", CA)))
        script_context(fake, sni=framed(b"ERROR"))
        script_start(fake)
        script_session(fake)
        link = await open_tls(driver)
        script_close(fake)
        await link.close()

    drive(body)


def test_mutual_tls_uploads_certificate_and_key():
    async def body(fake, driver):
        script_files(fake, [("ca", CA), ("cert", CERT), ("key", KEY)])
        script_context(fake, cert=CERT, key=KEY)
        script_start(fake)
        script_session(fake)
        link = await open_tls(driver, cert=CERT, key=KEY)
        assert "secret" not in repr([entry.detail for entry in driver.ledger.entries()])
        script_close(fake)
        await link.close()

    drive(body)


def test_handshake_failure_in_both_forms_names_tls_and_frees_everything():
    for answer in (ok() + framed(b"+CCHOPEN: 0,15"), framed(b"+CCHOPEN: 0,15", b"ERROR")):
        async def body(fake, driver):
            baseline = len(driver.ledger)
            script_first_open(fake)
            fake.script.pop()
            fake.expect(b'AT+CCHOPEN=0,"%s",%d,2' % (HOST, PORT), answer)
            script_stop(fake)
            error = await caught(open_tls(driver), TlsError)
            assert error.reason == TLS_FAILED and "err 15" in str(error)
            assert not any(driver.tls.slots) and len(driver.ledger) == baseline

        drive(body)


def test_other_open_errors():
    cases = ((framed(b"+CCHOPEN: 0,19") + ok(), TlsError, "err 19"),
             (ok() + framed(b"+CCHOPEN: 0,14"), NetError, "connect socket error"),
             (ok() + framed(b"+CCHOPEN: 0,13"), NetError, "DNS"))
    for answer, kind, words in cases:
        async def body(fake, driver):
            script_first_open(fake)
            fake.script.pop()
            fake.expect(b'AT+CCHOPEN=0,"%s",%d,2' % (HOST, PORT), answer)
            script_stop(fake)
            error = await caught(open_tls(driver), kind)
            assert words in str(error), str(error)

        drive(body, (None,))


def test_after_a_failure_files_and_context_are_checked_again():
    async def body(fake, driver):
        script_first_open(fake)
        fake.script.pop()
        fake.expect(b'AT+CCHOPEN=0,"%s",%d,2' % (HOST, PORT), ok() + framed(b"+CCHOPEN: 0,19"))
        script_stop(fake)
        await caught(open_tls(driver), TlsError)
        script_files(fake, [("ca", CA)])  # the modem lost its files: listed and sent again
        script_context(fake)
        script_start(fake)
        script_session(fake)
        link = await open_tls(driver)
        script_close(fake)
        await link.close()

    drive(body, (None, 1))


def test_bare_error_on_open_closes_the_session_on_the_modem():
    async def body(fake, driver):
        script_first_open(fake)
        fake.script.pop()
        fake.expect(b'AT+CCHOPEN=0,"%s",%d,2' % (HOST, PORT), framed(b"ERROR"))
        fake.expect(b"AT+CCHCLOSE=0", framed(b"ERROR"))
        script_stop(fake)
        error = await caught(open_tls(driver), AtError)
        assert error.command.startswith("AT+CCHOPEN")

    drive(body)


def test_open_that_never_confirms_times_out_and_closes():
    async def body(fake, driver):
        driver.channel.timeouts["+CCHOPEN"] = 100
        script_first_open(fake)
        fake.script.pop()
        fake.expect(b'AT+CCHOPEN=0,"%s",%d,2' % (HOST, PORT), ok())
        script_close(fake)
        error = await caught(open_tls(driver), Timeout)
        assert error.what == "+CCHOPEN URC" and not any(driver.tls.slots)

    drive(body, (None,))


def test_a_service_left_started_is_stopped_and_started_again():
    async def body(fake, driver):
        script_files(fake, [("ca", CA)])
        script_context(fake)
        script_start(fake, answer=framed(b"ERROR"))
        script_stop(fake)
        fake.expect(b"AT+CCHSTART", framed(b"+CCHSTART: 0") + ok())
        script_session(fake)
        link = await open_tls(driver)
        script_close(fake)
        await link.close()

    drive(body)


def test_a_service_that_cannot_start_is_a_tls_error():
    async def body(fake, driver):
        baseline = len(driver.ledger)
        script_files(fake, [("ca", CA)])
        script_context(fake)
        script_start(fake, answer=ok() + framed(b"+CCHSTART: 9"))
        script_stop(fake)
        fake.expect(b"AT+CCHSTART", ok() + framed(b"+CCHSTART: 9"))
        script_stop(fake)
        error = await caught(open_tls(driver), TlsError)
        assert "network error" in str(error) and len(driver.ledger) == baseline

    drive(body)


def test_peer_close_keeps_unread_bytes_then_reports_the_server():
    async def body(fake, driver):
        script_first_open(fake)
        link = await open_tls(driver)
        fake.push(framed(b"+CCHEVENT: 0,RECV EVENT", b"+CCH_PEER_CLOSED: 0"))
        await settle(fake)
        assert link.state == CLOSE_WAIT
        script_receive(fake, 0, b"\x20\x02\x00\x05")
        assert await link.read(10) == b"\x20\x02\x00\x05"
        error = await caught(link.read(10), LinkClosed)
        assert error.reason == "closed by the server" and link.state == CLOSED
        script_stop(fake)
        await link.close()

    drive(body)


def test_peer_close_without_data_and_an_unasked_close():
    for urc, reason in ((b"+CCH_PEER_CLOSED: 0", "closed by the server"),
                        (b"+CCHCLOSE: 0,4", "closed by the modem: peer closed")):
        async def body(fake, driver):
            script_first_open(fake)
            link = await open_tls(driver)
            fake.push(framed(urc))
            error = await caught(link.read(10), LinkClosed)
            assert error.reason == reason
            error = await caught(link.write(b"x"), LinkClosed)
            script_stop(fake)
            await link.close()
            assert not any(driver.tls.slots)

        drive(body)


def test_send_failures_close_the_session():
    for reply, words in ((ok() + framed(b"+CCHSEND: 0,6"), "send failed: transfer failed"),
                         (framed(b"ERROR"), "send refused")):
        async def body(fake, driver):
            script_first_open(fake)
            link = await open_tls(driver)
            fake.expect(b"AT+CCHSEND=0,3", b"\r\n>")
            fake.expect_data(b"abc", reply)
            script_close(fake)
            error = await caught(link.write(b"abc"), LinkClosed)
            assert words in error.reason and link.state == CLOSED

        drive(body, (None, 1))


def test_big_writes_go_in_2048_byte_commands():
    data = bytes(range(256)) * 10

    async def body(fake, driver):
        script_first_open(fake)
        link = await open_tls(driver)
        script_send(fake, 0, data[:SEND_CHUNK])
        script_send(fake, 0, data[SEND_CHUNK:])
        await link.write(data)
        assert link.bytes_out == len(data)
        script_close(fake)
        await link.close()

    drive(body, (None,))


def test_bad_requests_send_nothing():
    async def body(fake, driver):
        await caught(driver.open_tls_link("127.0.0.1", PORT, ca=CA, server_name="broker"), ConfigError)
        await caught(driver.open_tls_link("127.0.0.1", PORT, ca=CA, cert=CERT), ConfigError)
        await caught(driver.open_tls_link("127.0.0.1", PORT, ca=b""), ConfigError)
        if not MICROPYTHON:  # 10 KiB in one piece: more than a test run's fragmented heap has
            await caught(driver.open_tls_link("127.0.0.1", PORT, ca=b"x" * 10241), ConfigError)
        await caught(driver.open_tls_link('a"b', PORT, ca=CA), ConfigError)
        assert not any(driver.tls.slots)

    drive(body, (None,))

    async def closed(fake, driver):
        error = await caught(driver.open_tls_link("127.0.0.1", PORT, ca=CA), StateError)
        assert "TLS" in error.action

    drive(closed, (None,), network=False)


def test_two_sessions_and_no_third():
    async def body(fake, driver):
        script_first_open(fake)
        first = await open_tls(driver)
        script_context(fake, 1)
        script_session(fake, 1)
        second = await open_tls(driver)
        assert (first.number, second.number) == (0, 1)
        error = await caught(open_tls(driver), LimitExceeded)
        assert error.limit == 2
        script_close(fake, 0, last=False)
        await first.close()
        assert driver.tls.started
        script_close(fake, 1)
        await second.close()

    drive(body, (None,))


def test_netstat_shows_sessions_beside_the_modem_table():
    async def body(fake, driver):
        script_first_open(fake)
        link = await open_tls(driver)
        assert rows(driver) == [("tls0", "?", "127.0.0.1:8883", "ESTABLISHED", "?", False)]  # not read yet
        fake.expect(b"AT+IPADDR", ok(b"+IPADDR: 10.71.155.118"))  # netstat reads it once
        fake.expect(b"AT+CIPOPEN?", ok(*[b"+CIPOPEN: %d" % n for n in range(10)]))
        fake.expect(b"AT+CCHOPEN?", framed(b"+CCHOPEN: 1,15")
                    + ok(b'+CCHOPEN: 0,"",,,', b'+CCHOPEN: 1,"10.1.2.3",443,2,0'))
        await read_tables(driver)
        assert rows(driver) == [
            ("tls0", "10.71.155.118", "127.0.0.1:8883", "ESTABLISHED", "closed", True),
            ("tls1", "10.71.155.118", "10.1.2.3:443", "-", "open", True)]
        assert "#tls1 10.71.155.118 <==> 10.1.2.3:443  state: -  modem: open  LEAK" in repr(shell.netstat)
        script_close(fake)
        await link.close()

    drive(body, (None,))


def test_a_modem_restart_drops_the_session_and_the_service():
    async def body(fake, driver):
        script_first_open(fake)
        link = await open_tls(driver)
        fake.push(framed(b"RDY"))
        error = await caught(link.read(10), LinkClosed)
        assert error.reason == "modem restarted" and not driver.tls.started
        await link.close()  # nothing to close on a restarted modem

    drive(body, (None,), network=True)


def test_net_close_closes_tls_sessions_first():
    async def body(fake, driver):
        script_first_open(fake)
        link = await open_tls(driver)
        script_close(fake)
        script_net_close(fake)
        await driver.net_close()
        await driver.close()  # pays the AT+NETCLOSE that net_close() left owed
        assert link.state == CLOSED and not any(driver.tls.slots)

    drive(body)


def _cycle_script(fake, payload):
    script_start(fake)
    script_session(fake)
    script_send(fake, 0, payload)
    script_receive(fake, 0, payload)
    script_close(fake)


def test_tls_cycles_retain_nothing():
    book = Ledger()
    payload = b"\x30\x0e\x00\x04test" + b"12345678"

    def session():
        async def main():
            fake = FakeModem(record=False)
            driver = driver_with(fake, book)
            try:
                script_net_open(fake)
                await driver.net_open()
                script_files(fake, [("ca", CA)])
                script_context(fake)
                for _ in range(10):
                    _cycle_script(fake, payload)
                    link = await open_tls(driver)
                    await link.write(payload)
                    fake.push(framed(b"+CCHEVENT: 0,RECV EVENT"))
                    assert await link.read(100) == payload
                    await link.close()
                    assert book.count(LINK) == 0 and book.count(HANDLER) == 1
                await driver.net_close()
                script_net_close(fake)  # owed: the driver's close sends it
                await driver.close()
                assert fake.done(), fake.leftover()
            finally:
                await driver.close()

        run(main())
        assert len(book) == 0, book.entries()

    retained = retained_bytes(session, 20 if MICROPYTHON else 3)
    if MICROPYTHON:
        assert retained == 0, retained
