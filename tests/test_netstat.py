from cellmqtt import modem, shell
from cellmqtt.ledger import Ledger
from cellmqtt.modem.netstat import read_tables
from modem_fakes import FakeModem, drive, driver_with, framed, ok, script_close, script_open
from support import run

EMPTY_TABLE = ok(*[b"+CIPOPEN: %d" % number for number in range(10)])


def table_with(**links):
    lines = []
    for number in range(10):
        remote = links.get("l%d" % number)
        if remote is None:
            lines.append(b"+CIPOPEN: %d" % number)
        else:
            lines.append(b'+CIPOPEN: %d,"TCP","%s",%d,-1' % (number, remote[0], remote[1]))
    return ok(*lines)


def test_no_modem_attached():
    modem.attached[0] = None
    assert repr(shell.netstat) == "no modem attached"


def test_netstat_is_installed_with_the_others():
    from cellmqtt import repl

    namespace = {}
    repl.install(namespace)
    assert repr(namespace["netstat"]) == repr(shell.netstat)
    assert namespace["netstat"].refresh.__name__ == "refresh"  # await netstat.refresh() reaches it


def test_a_started_driver_attaches_and_close_detaches():
    book = Ledger()

    async def main():
        driver = driver_with(FakeModem(), book)
        assert modem.attached[0] is driver
        await driver.close()
        assert modem.attached[0] is None

    run(main())


def test_links_before_the_modem_table_was_read():
    async def body(fake, driver):
        script_open(fake, 0, b"183.230.40.96", 1883)
        link = await driver.open_link("183.230.40.96", 1883)
        assert repr(shell.netstat).split("\n") == [
            "Active links:",
            "#0 ? <==> 183.230.40.96:1883  state: ESTABLISHED  modem: ?",  # the IP: at the first refresh
            "modem table: not read yet (await netstat.refresh())",
        ]
        script_close(fake, 0)
        await link.close()

    drive(body, (None,))


def test_refresh_reads_the_modem_and_marks_leaks_both_ways():
    async def body(fake, driver):
        script_open(fake, 0, b"183.230.40.96", 1883)
        script_open(fake, 1, b"127.0.0.1", 7)
        first = await driver.open_link("183.230.40.96", 1883)
        second = await driver.open_link("127.0.0.1", 7)
        fake.expect(b"AT+IPADDR", ok(b"+IPADDR: 10.71.155.118"))  # netstat reads it once
        fake.expect(b"AT+CIPOPEN?", table_with(l0=(b"183.230.40.96", 1883), l4=(b"10.9.9.9", 80)))
        report = repr(await shell.netstat.refresh())
        assert report.split("\n") == [
            "Active links:",
            "#0 10.71.155.118 <==> 183.230.40.96:1883  state: ESTABLISHED  modem: open",
            "#1 10.71.155.118 <==> 127.0.0.1:7  state: ESTABLISHED  modem: closed  LEAK: only the host has it",
            "#4 10.71.155.118 <==> 10.9.9.9:80  state: -  modem: open  LEAK: only the modem has it",
            "modem table: read 0 s ago (await netstat.refresh() to read it now)",
        ]
        # the bare word uses the table as last read: no event loop needed
        assert repr(shell.netstat) == report
        script_close(fake, 0)
        script_close(fake, 1)
        await first.close()
        await second.close()
        fake.expect(b"AT+CIPOPEN?", EMPTY_TABLE)
        assert repr(await shell.netstat.refresh()).split("\n")[:2] == ["Active links:", "(none)"]

    drive(body, (None, 1))


def test_peer_closed_with_unread_data_shows_as_close_wait():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.expect(b"AT+IPADDR", ok(b"+IPADDR: 10.71.155.118"))  # netstat reads it once
        fake.expect(b"AT+CIPOPEN?", EMPTY_TABLE)
        fake.push(framed(b"+CIPRXGET: 1,0", b"+IPCLOSE: 0,1"))
        await read_tables(driver)
        line = repr(shell.netstat).split("\n")[1]
        assert line == ("#0 10.71.155.118 <==> 127.0.0.1:1883  state: CLOSE_WAIT  modem: closed"
                        "  LEAK: only the host has it")
        await link.close()
        assert repr(shell.netstat).split("\n")[1] == "(none)"

    drive(body, (None,))


def test_an_unanswered_table_read_waits_the_default_not_a_link_open():
    # AT+CIPOPEN? is a read: waiting +CIPOPEN's 120 s would hold the AT channel that long
    from cellmqtt.errors import Timeout
    from support import caught

    async def body(fake, driver):
        driver.channel.timeouts["+CIPOPEN"] = 60000
        driver.channel.timeouts["default"] = 50
        fake.expect(b"AT+CIPOPEN?")
        error = await caught(read_tables(driver), Timeout)
        assert error.timeout_ms == 50

    drive(body, (None,), network=False)
