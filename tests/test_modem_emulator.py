# The real driver against the SIM7600 emulator, on both runtimes. The emulator, an
# echo server and a broker run beforehand (python -m tools.services -- COMMAND starts
# them), with their addresses in CELLMQTT_MODEM, CELLMQTT_CONTROL and CELLMQTT_ECHO.
# After every scenario the ledger is empty and so is the emulator's socket table.
from cellmqtt.errors import AtError, LinkClosed, NetError, RegistrationDenied, SimError, Timeout
from cellmqtt.ledger import LINK, Ledger
from cellmqtt.modem.sim7600 import NET_LOST, NET_OPEN
from cellmqtt.modem.netstat import read_tables, rows
from emulator_support import BOUNDED, address, control, fresh_modem, modem_state, ready_driver, teardown
from modem_fakes import links
from support import MICROPYTHON, caught, retained_bytes, run


def scenario(body, timeouts=BOUNDED):
    """A fresh, powered emulator; a driver attached to it; body(driver); teardown.
    Then the ledger and the emulator's links are both empty."""
    fresh_modem()
    book = Ledger()

    async def main():
        driver = await ready_driver(book, timeouts)
        try:
            await body(driver)
        finally:
            await teardown(driver)

    run(main())
    assert len(book) == 0, book.entries()
    assert modem_state()["links"] == []


async def echo_link(driver):
    host, number = address("CELLMQTT_ECHO")
    return await driver.open_link(host, number)


async def read_exactly(link, n):
    got = bytearray()
    while len(got) < n:
        got.extend(await link.read(n - len(got)))
    return bytes(got)


async def round_trip(link, data):
    await link.write(data)
    return await read_exactly(link, len(data))


def test_bytes_through_a_link_to_a_real_echo_server():
    big = bytes(i % 251 for i in range(4000))  # three CIPSEND chunks, three CIPRXGET reads

    async def body(driver):
        assert driver.net == NET_OPEN and driver.ip is None  # AT+IPADDR is netstat's
        link = await echo_link(driver)
        assert await round_trip(link, b"hello") == b"hello"
        assert await round_trip(link, big) == big
        assert await read_tables(driver) == {link.number: (link.host, link.port)}
        assert modem_state()["links"] == [link.number]
        await link.close()
        assert await read_tables(driver) == {}
        assert rows(driver) == []

    scenario(body)


def test_remote_close():
    async def body(driver):
        link = await echo_link(driver)
        control("FAULT remote_close link=%d" % link.number)
        error = await caught(link.read(10), LinkClosed)
        assert error.reason == "closed by remote" and driver.ledger.count(LINK) == 0

    scenario(body)


def test_send_timeout():
    async def body(driver):
        link = await echo_link(driver)
        control("FAULT send_timeout link=%d" % link.number)
        error = await caught(link.read(10), LinkClosed)
        assert error.reason == "send timeout"
        await caught(link.write(b"x"), LinkClosed)

    scenario(body)


def test_network_lost_then_recovered():
    async def body(driver):
        first = await echo_link(driver)
        second = await echo_link(driver)
        control("FAULT network_lost")
        error = await caught(first.read(10), LinkClosed)
        assert error.reason == "network closed unexpectedly" and driver.net == NET_LOST
        await caught(second.read(10), LinkClosed)
        assert driver.ledger.count(LINK) == 0
        await driver.net_open()
        link = await echo_link(driver)
        assert await round_trip(link, b"again") == b"again"
        await link.close()

    scenario(body)


def test_short_send_closes_the_link():
    async def body(driver):
        link = await echo_link(driver)
        control("FAULT short_send")
        error = await caught(link.write(b"0123456789"), LinkClosed)
        assert "5 of 10" in error.reason and links(driver) == []

    scenario(body)


def test_error_and_cme_answers():
    async def body(driver):
        control("FAULT error command=AT+CIPOPEN count=1")
        error = await caught(echo_link(driver), AtError)
        assert error.kind == "ERROR" and links(driver) == []
        control("FAULT cme command=AT+CSQ code=30 count=1")
        error = await caught(driver.signal(), AtError)
        assert (error.kind, error.code) == ("CME", 30)
        control("FAULT open_fail err=10")
        error = await caught(echo_link(driver), NetError)
        assert (error.operation, error.code) == ("CIPOPEN", 10) and links(driver) == []
        link = await echo_link(driver)  # and the channel still works
        assert await round_trip(link, b"ok") == b"ok"
        await link.close()

    scenario(body)


def test_sim_and_registration_faults():
    async def body(driver):
        control("FAULT no_sim")
        error = await caught(driver.check_sim(), SimError)
        assert error.code == 10
        control("CLEAR")
        control("FAULT reg_denied")
        await caught(driver.wait_registered(), RegistrationDenied)
        control("CLEAR")

    scenario(body)


def test_silent_modem_times_out_and_the_channel_recovers():
    async def body(driver):
        control("FAULT silent command=AT+CSQ count=1")
        error = await caught(driver.signal(), Timeout)
        assert error.timeout_ms == 300
        rssi, _ = await driver.signal()
        assert 0 <= rssi <= 31

    scenario(body, dict(BOUNDED, **{"+CSQ": 300}))


def test_garbage_on_the_uart():
    async def body(driver):
        link = await echo_link(driver)
        for seed in range(5):
            control("FAULT garbage bytes=300 seed=%d" % seed)
            assert await round_trip(link, b"still fine %d" % seed) == b"still fine %d" % seed
        await link.close()

    scenario(body)


def test_brownout_mid_session_then_power_back():
    async def body(driver):
        link = await echo_link(driver)
        control("FAULT brownout command=AT+CIPSEND")
        await caught(link.write(b"lost"), Timeout)
        assert links(driver) == [] and driver.ledger.count(LINK) == 0
        control("POWER ON")
        await driver.power_up()
        await driver.attach("internet")
        again = await echo_link(driver)
        assert await round_trip(again, b"back") == b"back"
        await again.close()

    scenario(body, dict(BOUNDED, **{"+CIPSEND": 300, "+CIPCLOSE": 300}))


def test_a_thousand_cycles_retain_nothing():
    fresh_modem()
    book = Ledger()
    payload = b"\x30\x20\x00\x0bcellmqtt/t1" + bytes(range(21))
    sessions = 20
    cycles_per_session = 50

    def session():
        async def main():
            driver = await ready_driver(book)
            try:
                for _ in range(cycles_per_session):
                    link = await echo_link(driver)
                    assert await round_trip(link, payload) == payload
                    await link.close()
                assert book.count(LINK) == 0
            finally:
                await teardown(driver)

        run(main())
        assert len(book) == 0, book.entries()

    retained = retained_bytes(session, sessions)  # 1000 cycles after 150 of warm-up
    assert modem_state()["links"] == []
    if MICROPYTHON:
        assert retained == 0, retained
