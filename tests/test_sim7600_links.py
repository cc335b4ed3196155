import asyncio

from cellmqtt.errors import ConfigError, LimitExceeded, LinkClosed, NetError, StateError, Timeout
from cellmqtt.ledger import HANDLER, LINK, TASK, UART, Ledger
from cellmqtt.modem.link import CLOSE_WAIT, CLOSED, ESTABLISHED
from cellmqtt.modem.sim7600 import NET_DOWN, NET_LOST, NET_OPEN
from cellmqtt.modem.netstat import read_tables, rows
from modem_fakes import (
    FakeModem, drive, driver_with, framed, links, ok, rxget_reply, script_close, script_net_close, script_net_open,
    script_open, script_receive, script_send)
from support import MICROPYTHON, caught, retained_bytes, run


async def settle(fake):
    # let the reader route everything the fake has queued
    while fake.queued():
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)


def test_open_send_receive_close():
    async def body(fake, driver):
        book = driver.ledger
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883, owner="MQTT")
        assert link.state == ESTABLISHED and link.number == 0
        held = [(entry.kind, entry.owner, entry.detail) for entry in book.entries()]
        assert held == [(UART, "AT", "UART"), (TASK, "AT", "AT reader"), (HANDLER, "AT", "URC sim7600 stack"),
                        (LINK, "MQTT", "#0 127.0.0.1:1883")]
        script_send(fake, 0, b"\x10\x0c\x00\x04MQTT")
        await link.write(b"\x10\x0c\x00\x04MQTT")
        fake.push(framed(b"+CIPRXGET: 1,0"))
        script_receive(fake, 0, b"\x20\x02\x00\x00")
        assert await link.read(100) == b"\x20\x02\x00\x00"
        script_close(fake, 0)
        await link.close()
        assert link.state == CLOSED and book.count(LINK) == 0
        await link.close()  # idempotent: nothing more on the wire

    drive(body)


def test_open_failure_forms_free_the_number():
    async def body(fake, driver):
        fake.expect(b'AT+CIPOPEN=0,"TCP","127.0.0.1",1', framed(b"+CIPOPEN: 0,3", b"ERROR"))
        error = await caught(driver.open_link("127.0.0.1", 1), NetError)
        assert (error.operation, error.code) == ("CIPOPEN", 3) and "wrong parameter" in str(error)
        script_open(fake, 0, port=2, err=1)
        error = await caught(driver.open_link("127.0.0.1", 2), NetError)
        assert error.code == 1
        assert links(driver) == [] and driver.ledger.count(LINK) == 0

    drive(body)


def test_the_error_names_load_with_the_first_error_only():
    import sys

    async def body(fake, driver):
        sys.modules.pop("cellmqtt.modem.code_names", None)
        script_open(fake, 0)
        script_close(fake, 0)
        await (await driver.open_link("127.0.0.1", 1883)).close()
        assert "cellmqtt.modem.code_names" not in sys.modules  # a window that goes well
        script_open(fake, 0, err=11)
        error = await caught(driver.open_link("127.0.0.1", 1883), NetError)
        assert error.name == "DNS parse failed" and "cellmqtt.modem.code_names" in sys.modules

    drive(body, (None,))


def test_open_urc_before_ok():
    async def body(fake, driver):
        fake.expect(b'AT+CIPOPEN=0,"TCP","127.0.0.1",7', framed(b"+CIPOPEN: 0,0") + ok())
        link = await driver.open_link("127.0.0.1", 7)
        script_close(fake, 0)
        await link.close()

    drive(body)


def test_open_that_never_confirms_is_closed_on_the_modem():
    async def body(fake, driver):
        driver.channel.timeouts["+CIPOPEN"] = 100
        fake.expect(b'AT+CIPOPEN=0,"TCP","127.0.0.1",7', ok())
        script_close(fake, 0)
        error = await caught(driver.open_link("127.0.0.1", 7), Timeout)
        assert error.what == "+CIPOPEN URC" and links(driver) == []

    drive(body, (None,))


def test_open_needs_the_network():
    async def body(fake, driver):
        error = await caught(driver.open_link("127.0.0.1", 7), StateError)
        assert error.state == NET_DOWN

    drive(body, (None,), network=False)


def test_address_that_would_break_the_command_line_is_refused():
    async def body(fake, driver):
        await caught(driver.open_link('evil",1\r', 80), ConfigError)
        await caught(driver.open_link("127.0.0.1", 0), ConfigError)
        assert links(driver) == []

    drive(body, (None,))


def test_ten_links_and_no_more():
    async def body(fake, driver):
        links = []
        for number in range(10):
            script_open(fake, number, port=1000 + number)
            links.append(await driver.open_link("127.0.0.1", 1000 + number))
        await caught(driver.open_link("127.0.0.1", 1), LimitExceeded)
        assert [link.number for link in links] == list(range(10))
        for link in links:
            script_close(fake, link.number)
            await link.close()

    drive(body, (None,))


def test_large_writes_go_in_chunks_of_1500():
    data = bytes(i % 253 for i in range(3200))

    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        script_send(fake, 0, data[:1500])
        script_send(fake, 0, data[1500:3000])
        script_send(fake, 0, data[3000:])
        await link.write(data)
        assert link.bytes_out == 3200
        script_close(fake, 0)
        await link.close()

    drive(body, (None, 97))


def test_short_or_failed_send_closes_the_link():
    async def body(fake, driver):
        for confirmed in (2, 0, -1):
            script_open(fake, 0)
            link = await driver.open_link("127.0.0.1", 1883)
            script_send(fake, 0, b"hello", confirmed)
            script_close(fake, 0)
            error = await caught(link.write(b"hello"), LinkClosed)
            assert "%d of 5" % confirmed in error.reason
            assert link.state == CLOSED and driver.ledger.count(LINK) == 0
            await caught(link.write(b"x"), LinkClosed)

    drive(body)


def test_send_refused_closes_the_link():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.expect(b"AT+CIPSEND=0,3", framed(b"+CIPERROR: 4", b"ERROR", b"ERROR"))
        fake.expect(b"AT+CIPCLOSE=0", framed(b"+CIPCLOSE: 0,4", b"ERROR"))
        error = await caught(link.write(b"abc"), LinkClosed)
        assert "send refused" in error.reason and "CIPERROR" in error.reason
        assert links(driver) == []

    drive(body)


def test_data_arriving_during_a_send_is_read_after_it():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.expect(b"AT+CIPSEND=0,4", framed(b"+CIPRXGET: 1,0") + b"\r\n>")
        fake.expect_data(b"ping", framed(b"+CIPRXGET: 1,0") + ok() + framed(b"+CIPSEND: 0,4,4"))
        await link.write(b"ping")
        script_receive(fake, 0, b"pong")
        assert await link.read(10) == b"pong"
        script_close(fake, 0)
        await link.close()

    drive(body)


def test_payload_that_looks_like_at_lines_is_data():
    payload = b"\r\nOK\r\n+IPCLOSE: 0,1\r\n+CIPRXGET: 1,0\r\n>ERROR\r\n"

    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"+CIPRXGET: 1,0"))
        script_receive(fake, 0, payload)
        assert await link.read(1500) == payload
        assert link.state == ESTABLISHED
        script_close(fake, 0)
        await link.close()

    drive(body)


def test_read_fetches_until_the_modem_is_empty_and_in_pieces():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"+CIPRXGET: 1,0"))
        script_receive(fake, 0, b"abcdef", rest=3)
        assert await link.read(4) == b"abcd"
        assert await link.read(4) == b"ef"
        assert link._buf == b""  # read empty: the payload is not held until the next fetch
        script_receive(fake, 0, b"ghi", rest=0)
        assert await link.read(4) == b"ghi"
        assert link.bytes_in == 9
        script_close(fake, 0)
        await link.close()

    drive(body)


def test_arrival_urc_during_the_read_is_not_lost():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"+CIPRXGET: 1,0"))
        # the modem emptied its buffer for us, then new data came: +CIPRXGET: 1 inside
        # the +CIPRXGET: 2 answer, which says rest 0
        reply = rxget_reply(0, b"one", 0)
        fake.expect(b"AT+CIPRXGET=2,0,1500", reply[:-6] + framed(b"+CIPRXGET: 1,0") + reply[-6:])
        assert await link.read(10) == b"one"
        script_receive(fake, 0, b"two")
        assert await link.read(10) == b"two"
        script_close(fake, 0)
        await link.close()

    drive(body)


def test_an_arrival_notice_before_the_reads_header_costs_no_second_read():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"+CIPRXGET: 1,0"))
        # bytes came before the read reached the modem: their notice precedes its header,
        # and the read (rest 0) took them
        fake.expect(b"AT+CIPRXGET=2,0,1500", framed(b"+CIPRXGET: 1,0") + rxget_reply(0, b"onetwo", 0))
        assert await link.read(10) == b"onetwo"
        driver.channel.timeouts["read"] = 100
        await caught(link.read(10), Timeout)  # and no AT+CIPRXGET=2 that finds nothing
        script_close(fake, 0)
        await link.close()

    drive(body)


def test_no_data_answer_is_not_an_error():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"+CIPRXGET: 1,0"))
        fake.expect(b"AT+CIPRXGET=2,0,1500", framed(b"+IP ERROR: No data", b"ERROR"))
        driver.channel.timeouts["read"] = 100
        await caught(link.read(10), Timeout)  # nothing came: the read bound
        assert link.state == ESTABLISHED
        script_close(fake, 0)
        await link.close()

    drive(body, (None,))


def test_another_ip_error_on_a_read_fails_the_link_at_once():
    # "+IP ERROR: Connection is not created" is not "No data": waiting out the read
    # bound (300 s) for a link the modem no longer has would stall the window
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"+CIPRXGET: 1,0"))
        fake.expect(b"AT+CIPRXGET=2,0,1500", framed(b"+IP ERROR: Connection is not created", b"ERROR"))
        fake.expect(b"AT+CIPCLOSE=0", framed(b"+CIPCLOSE: 0,4", b"ERROR"))
        error = await caught(link.read(10), LinkClosed)
        assert "receive failed" in str(error) and link.state != ESTABLISHED
        await link.close()

    drive(body, (None,))


def test_read_timeout_leaves_the_link_usable():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        driver.channel.timeouts["read"] = 100
        error = await caught(link.read(10), Timeout)
        assert error.what == "link #0 read"
        fake.push(framed(b"+CIPRXGET: 1,0"))
        script_receive(fake, 0, b"late")
        assert await link.read(10) == b"late"
        script_close(fake, 0)
        await link.close()

    drive(body, (None,))


def test_remote_close_wakes_the_reader_and_frees_everything():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)

        async def peer_closes():
            await settle(fake)
            fake.push(framed(b"+IPCLOSE: 0,1"))

        closer = asyncio.create_task(peer_closes())
        error = await caught(link.read(10), LinkClosed)
        await closer
        assert error.reason == "closed by remote"
        assert link.state == CLOSED and links(driver) == [] and driver.ledger.count(LINK) == 0
        await link.close()  # nothing on the wire: the modem already dropped it

    drive(body)


def test_remote_close_after_data_keeps_the_data_readable():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"+CIPRXGET: 1,0", b"+IPCLOSE: 0,1"))
        await settle(fake)
        assert link.state == CLOSE_WAIT
        script_receive(fake, 0, b"\x20\x02\x00\x05")  # a refusing CONNACK
        assert await link.read(10) == b"\x20\x02\x00\x05"
        error = await caught(link.read(10), LinkClosed)
        assert error.reason == "closed by remote" and links(driver) == []

    drive(body)


def test_a_send_the_peer_answered_and_closed_on_is_still_confirmed():
    # a broker refuses CONNECT: its CONNACK and close come before the +CIPSEND URC
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.expect(b"AT+CIPSEND=0,4", b"\r\n>")
        fake.expect_data(b"conn", ok() + framed(b"+CIPRXGET: 1,0", b"+IPCLOSE: 0,1", b"+CIPSEND: 0,4,4"))
        await link.write(b"conn")
        assert link.state == CLOSE_WAIT and link.bytes_out == 4
        script_receive(fake, 0, b"\x20\x02\x00\x05")
        assert await link.read(10) == b"\x20\x02\x00\x05"
        await caught(link.write(b"more"), LinkClosed)
        error = await caught(link.read(10), LinkClosed)
        assert error.reason == "closed by remote" and links(driver) == []

    drive(body)


def test_a_send_the_peer_closed_on_without_a_result_is_a_closed_link():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        driver.channel.timeouts["late"] = 50
        fake.expect(b"AT+CIPSEND=0,4", b"\r\n>")
        fake.expect_data(b"conn", ok() + framed(b"+CIPRXGET: 1,0", b"+IPCLOSE: 0,1"))
        error = await caught(link.write(b"conn"), LinkClosed)
        assert error.reason == "closed by remote" and link.state == CLOSE_WAIT
        script_receive(fake, 0, b"bye")
        assert await link.read(10) == b"bye"  # what the peer sent before closing
        await caught(link.read(10), LinkClosed)
        assert links(driver) == []

    drive(body)


def test_every_ipclose_reason():
    async def body(fake, driver):
        for code, reason in ((0, "closed by local"), (1, "closed by remote"), (2, "send timeout"), (7, "closed")):
            script_open(fake, 0)
            link = await driver.open_link("127.0.0.1", 1883)
            fake.push(framed(b"+IPCLOSE: 0,%d" % code))
            error = await caught(link.read(10), LinkClosed)
            assert error.reason == reason
            await caught(link.write(b"x"), LinkClosed)

    drive(body)


def test_network_lost_drops_every_link_at_once():
    async def body(fake, driver):
        script_open(fake, 0)
        script_open(fake, 1, port=1884)
        first = await driver.open_link("127.0.0.1", 1883)
        second = await driver.open_link("127.0.0.1", 1884)
        fake.push(framed(b"+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY"))
        await settle(fake)
        assert first.state == CLOSED and second.state == CLOSED and driver.net == NET_LOST
        assert driver.ledger.count(LINK) == 0
        error = await caught(first.read(1), LinkClosed)
        assert error.reason == "network closed unexpectedly"
        await caught(driver.open_link("127.0.0.1", 1), StateError)
        script_net_close(fake)  # the host must send AT+NETCLOSE before opening again
        script_net_open(fake)
        await driver.net_open()
        assert driver.net == NET_OPEN

    drive(body)


def test_modem_restart_drops_links():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"RDY", b"+CPIN: READY", b"SMS DONE", b"PB DONE"))
        await settle(fake)
        assert link.state == CLOSED and link.reason == "modem restarted" and driver.net == NET_DOWN

    drive(body)


def test_close_answered_not_open_still_frees_the_number():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.expect(b"AT+CIPCLOSE=0", framed(b"+CIPCLOSE: 0,4", b"ERROR"))
        await link.close()
        assert links(driver) == [] and driver.ledger.count(LINK) == 0

    drive(body)


def test_unconfirmed_close_is_redone_before_the_number_is_reused():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.expect(b"AT+CIPCLOSE=0")  # no answer
        driver.channel.timeouts["+CIPCLOSE"] = 100
        await link.close()
        assert links(driver) == [] and driver.ledger.count(LINK) == 0
        script_close(fake, 0)  # first make sure the modem let go of it
        script_open(fake, 0)
        again = await driver.open_link("127.0.0.1", 1883)
        script_close(fake, 0)
        await again.close()

    drive(body, (None,))


def test_uart_gone_wakes_readers():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.hang_up()
        error = await caught(link.read(10), LinkClosed)
        assert error.reason.startswith("modem gone")
        assert driver.ledger.count(LINK) == 0

    drive(body, (None,))


def test_concurrent_reads_are_refused():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        reader = asyncio.create_task(caught(link.read(10), LinkClosed))
        await settle(fake)
        await caught(link.read(10), StateError)
        script_close(fake, 0)
        await link.close()
        assert (await reader).reason == "closed"

    drive(body, (None,))


def test_modem_table_and_leaks_both_ways():
    table = ok(b'+CIPOPEN: 0,"TCP","127.0.0.1",1883,-1', b"+CIPOPEN: 1", b"+CIPOPEN: 2",
               b'+CIPOPEN: 3,"TCP","10.1.2.3",80,-1', b"+CIPOPEN: 4", b"+CIPOPEN: 5", b"+CIPOPEN: 6",
               b"+CIPOPEN: 7", b"+CIPOPEN: 8", b"+CIPOPEN: 9")

    async def body(fake, driver):
        script_open(fake, 0)
        script_open(fake, 1, port=9)
        first = await driver.open_link("127.0.0.1", 1883)
        second = await driver.open_link("127.0.0.1", 9)
        assert rows(driver)[0][4] == "?"
        # a URC that arrives during the query is not a table line
        fake.expect(b"AT+IPADDR", ok(b"+IPADDR: 10.71.155.118"))  # netstat reads it once
        fake.expect(b"AT+CIPOPEN?", framed(b"+CIPOPEN: 5,0") + table)
        assert await read_tables(driver) == {0: ("127.0.0.1", 1883), 3: ("10.1.2.3", 80)}
        assert rows(driver) == [
            (0, "10.71.155.118", "127.0.0.1:1883", "ESTABLISHED", "open", False),
            (1, "10.71.155.118", "127.0.0.1:9", "ESTABLISHED", "closed", True),
            (3, "10.71.155.118", "10.1.2.3:80", "-", "open", True),
        ]
        script_close(fake, 0)
        script_close(fake, 1)
        await first.close()
        await second.close()

    drive(body)


def test_driver_close_closes_what_its_users_left_open():
    book = Ledger()

    async def main():
        fake = FakeModem()
        driver = driver_with(fake, book)
        script_net_open(fake)
        await driver.net_open()
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        script_close(fake, 0)
        await driver.close()
        await driver.close()
        assert link.state == CLOSED and fake.done() and fake.closed

    run(main())
    assert len(book) == 0


def _cycle_script(fake, payload):
    script_open(fake, 0)
    script_send(fake, 0, payload)
    fake.push(framed(b"+CIPRXGET: 1,0"))
    script_receive(fake, 0, payload)
    script_close(fake, 0)


def test_open_send_receive_close_cycles_retain_nothing():
    # whole sessions (driver, network, 10 link cycles, teardown) from the top level, so
    # the gc sees a shallow stack and the count is exact under MicroPython
    book = Ledger()
    payload = b"\x30\x0e\x00\x04test" + b"12345678"

    def session():
        async def main():
            fake = FakeModem(record=False)
            driver = driver_with(fake, book)
            try:
                script_net_open(fake)
                await driver.net_open()
                for _ in range(10):
                    _cycle_script(fake, payload)
                    link = await driver.open_link("127.0.0.1", 1883)
                    await link.write(payload)
                    assert await link.read(100) == payload
                    await link.close()
                    assert book.count(LINK) == 0
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


def test_flush_sends_what_the_reader_gathers_without_waiting_out_coalesce():
    # once read() was called, writes gather until none came for "coalesce" ms; flush() (the
    # MQTT client waits for an answer: nothing more comes) sends them in one command now
    async def body(fake, driver):
        driver.channel.timeouts["coalesce"] = 60000  # far past the test: only flush() can send
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        reader = asyncio.create_task(link.read(10))
        await settle(fake)
        script_send(fake, 0, b"abcd")
        await link.write(b"ab")
        await link.write(b"cd")
        await settle(fake)
        assert fake.script and link.bytes_out == 0  # gathered, not sent
        link.flush()
        for _ in range(50):
            await settle(fake)
            if link.bytes_out:
                break
        assert link.bytes_out == 4 and not fake.script
        script_receive(fake, 0, b"ok")
        fake.push(framed(b"+CIPRXGET: 1,0"))
        assert await reader == b"ok"
        script_close(fake, 0)
        await link.close()

    drive(body)
