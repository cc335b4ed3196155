import asyncio

from cellmqtt import port
from cellmqtt.errors import AtError, ConfigError, NetError, NoSignal, RegistrationDenied, SimError, StateError, Timeout
from cellmqtt.ledger import Ledger
from cellmqtt.modem.sim7600 import NET_CLOSING, NET_DOWN, NET_OPEN, apn_setting
from modem_fakes import (FakeModem, attach_settings, drive, driver_with, framed, ok, script_net_close,
                         script_net_open, script_registered, script_settings)
from support import caught, raises, run


def test_power_up_probes_until_the_modem_answers():
    async def body(fake, driver):
        driver.channel.timeouts["probe"] = 150  # room for a loaded machine to answer
        fake.expect(b"AT")  # still booting: ignored
        fake.expect(b"AT", b"AT\r\r\nOK\r\n")  # left on by an MCU reset: no RDY; echo on
        await driver.power_up()
        assert not driver.booted

    drive(body, network=False)


def test_power_up_ends_with_rdy_and_sends_nothing_after_it():
    async def body(fake, driver):
        driver.channel.timeouts["probe"] = 150
        fake.expect(b"AT", framed(b"RDY", b"+CPIN: READY"))  # the probe came too early to be answered
        await driver.power_up()
        assert driver.booted and driver.sim == "READY"
        await driver.power_up()  # the modem said it takes commands: no probe

    drive(body, network=False)


def test_power_up_gives_up_at_the_boot_bound():
    book = Ledger()

    async def main():
        fake = FakeModem()
        driver = driver_with(fake, book)
        driver.channel.timeouts["boot"] = 300
        try:
            error = await caught(driver.power_up(), Timeout)
            assert error.timeout_ms == driver.channel.timeout("boot")
            assert len(fake.unexpected) >= 5  # it kept probing, about every 30 ms here
        finally:
            await driver.close()

    run(main())
    assert len(book) == 0


def test_sim_ready():
    async def body(fake, driver):
        fake.expect(b"AT+CPIN?", ok(b"+CPIN: READY"))
        await driver.check_sim()
        assert driver.sim == "READY"

    drive(body, network=False)


def test_a_sim_the_modem_reported_ready_is_not_asked_again():
    def attach_after_the_sim(fake):
        script_registered(fake, settings=attach_settings())
        script_net_open(fake)

    async def body(fake, driver):
        fake.expect(b"AT+CSQ", framed(b"RDY", b"+CPIN: READY") + ok(b"+CSQ: 20,99"))
        await driver.signal()
        attach_after_the_sim(fake)  # no AT+CPIN?: the modem said READY since its boot
        await driver.attach("iot")
        fake.expect(b"AT+CSQ", framed(b"RDY") + ok(b"+CSQ: 20,99"))  # a restart: not known
        await driver.signal()
        fake.expect(b"AT+CPIN?", ok(b"+CPIN: READY"))
        attach_after_the_sim(fake)
        await driver.attach("iot")
        await driver.net_close()
        fake.expect(b"AT+CPOF", ok())  # no AT+NETCLOSE first: AT+CPOF ends the network too
        await driver.power_off()
        assert driver.sim is None  # nor known after a power-off

    drive(body, network=False)


def test_sim_locked_is_a_typed_error():
    async def body(fake, driver):
        for state in (b"SIM PIN", b"SIM PUK", b"PH-NET PIN"):
            fake.expect(b"AT+CPIN?", ok(b"+CPIN: " + state))
            error = await caught(driver.check_sim(), SimError)
            assert error.state == state.decode()

    drive(body, network=False)


def test_sim_not_inserted_numeric_and_text():
    async def body(fake, driver):
        fake.expect(b"AT+CPIN?", framed(b"+CME ERROR: 10"))
        error = await caught(driver.check_sim(), SimError)
        assert (error.state, error.code) == ("SIM not inserted", 10)
        fake.expect(b"AT+CPIN?", framed(b"+CME ERROR: SIM not inserted"))
        error = await caught(driver.check_sim(), SimError)
        assert error.state == "SIM not inserted"

    drive(body, network=False)


def test_sim_busy_and_an_unanswered_query_are_retried():
    async def body(fake, driver):
        driver.channel.timeouts["+CPIN"] = 50  # well inside the "sim" bound
        fake.expect(b"AT+CPIN?", framed(b"+CME ERROR: 14"))
        fake.expect(b"AT+CPIN?")  # early in boot it may go unanswered
        fake.expect(b"AT+CPIN?", ok(b"+CPIN: READY"))
        await driver.check_sim()

    drive(body, network=False)


def test_sim_busy_for_too_long():
    async def body(fake, driver):
        driver.channel.timeouts["sim"] = 300
        for _ in range(60):
            fake.expect(b"AT+CPIN?", framed(b"+CME ERROR: 14"))
        error = await caught(driver.check_sim(), SimError)
        assert error.code == 14
        fake.script.clear()

    drive(body, (None,), network=False)


def test_signal_and_no_signal():
    async def body(fake, driver):
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 20,99"))
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 99,99"))
        assert await driver.signal() == (20, 99)
        assert await driver.signal() == (99, 99)

    drive(body, network=False)


def test_registered_home_or_roaming():
    async def body(fake, driver):
        script_registered(fake)  # done already: the first query says so
        assert await driver.wait_registered() == 1
        script_settings(fake, ok(b"+CEREG: 1,2", b"+CGREG: 0,5"))  # roaming on 2G/3G: LTE still searching
        assert await driver.wait_registered() == 5

    drive(body, network=False)


def test_registration_waits_for_the_report():
    async def body(fake, driver):
        driver.channel.timeouts["requery"] = 2000  # the report ends the wait, not a requery
        script_settings(fake, ok(b"+CEREG: 1,2", b"+CGREG: 0,2"))

        async def registers():
            await port.asleep_ms(30)
            fake.push(framed(b"+CGREG: 2", b"+CEREG: 1"))

        task = asyncio.create_task(registers())
        assert await driver.wait_registered() == 1
        await task
        assert len(driver.channel._subs) == 1  # the reports' subscription is gone again

    drive(body, network=False)


def test_a_report_during_the_query_is_not_its_answer():
    async def body(fake, driver):
        # `+CEREG: 5` before the answer, and `+CEREG: 1` between the answer and OK
        script_settings(fake, framed(b"+CEREG: 5") + ok(b"+CEREG: 1,2", b"+CGREG: 0,2"))
        assert await driver.wait_registered() == 5
        script_settings(fake, framed(b"+CEREG: 1,2", b"+CEREG: 1", b"+CGREG: 0,2") + ok())
        assert await driver.wait_registered() == 1

    drive(body, network=False)


def test_a_stat_that_never_changes_is_asked_again():
    async def body(fake, driver):
        # no report comes for a stat that does not change: the queries come again, one
        # a line, and one refused does not stop the round
        script_settings(fake, ok(b"+CEREG: 1,2", b"+CGREG: 0,2"))
        fake.expect(b"AT+CEREG?", ok(b"+CEREG: 1,2"))
        fake.expect(b"AT+CGREG?", framed(b"+CME ERROR: 100"))
        fake.expect(b"AT+CEREG?", ok(b"+CEREG: 1,5"))
        assert await driver.wait_registered() == 5

    drive(body, network=False)


def test_reports_refused_still_register_by_query():
    async def body(fake, driver):
        # an error stops the line and does not say where: one by one, AT+CEREG=1 is the
        # one refused, and the window goes on without reports
        script_settings(fake, framed(b"ERROR"))
        fake.expect(b"ATE0", ok())
        fake.expect(b"AT+CEREG=1", framed(b"ERROR"))
        fake.expect(b"AT+CEREG?", ok(b"+CEREG: 0,1"))
        assert await driver.wait_registered() == 1

    drive(body, network=False)


def test_a_setting_the_line_could_not_take_is_named_by_its_own_error():
    async def body(fake, driver):
        fake.expect(b"AT+CPIN?", ok(b"+CPIN: READY"))
        script_settings(fake, framed(b"+CME ERROR: 4"), attach_settings())
        fake.expect(b"ATE0", ok())
        fake.expect(b"AT+CEREG=1", ok())
        fake.expect(b'AT+CGDCONT=1,"IP","iot"', ok())
        fake.expect(b"AT+CIPRXGET=1", framed(b"+CME ERROR: 4"))
        error = await caught(driver.attach("iot"), AtError)
        assert (error.command, error.code) == ("AT+CIPRXGET=1", 4)
        # a line that gets no answer: the settings one by one too, then the queries
        driver.channel.timeouts["default"] = 100
        script_settings(fake, b"", attach_settings())
        fake.expect(b"ATE0", ok())
        fake.expect(b"AT+CEREG=1", ok())
        fake.expect(b'AT+CGDCONT=1,"IP","iot"', ok())
        fake.expect(b"AT+CIPRXGET=1", ok())
        fake.expect(b"AT+CEREG?", ok(b"+CEREG: 1,1"))
        script_net_open(fake)
        await driver.attach("iot")
        assert driver.net == NET_OPEN

    drive(body, network=False)


def test_unknown_stat_counts_as_not_registered():
    async def body(fake, driver):
        script_settings(fake, ok(b"+CEREG: 1,11", b"+CGREG: 0,4"))
        fake.expect(b"AT+CEREG?", ok(b"+CEREG: 1,1,\"00C3\",\"0F3A1B2C\",7"))
        assert await driver.wait_registered() == 1

    drive(body, network=False)


def test_denied_is_a_typed_error_at_once():
    async def body(fake, driver):
        script_settings(fake, ok(b"+CEREG: 1,3", b"+CGREG: 0,3"))
        error = await caught(driver.wait_registered(), RegistrationDenied)
        assert error.command == "AT+CEREG?"
        # or reported while waiting
        script_settings(fake, ok(b"+CEREG: 1,2", b"+CGREG: 0,2") + framed(b"+CGREG: 3"))
        error = await caught(driver.wait_registered(), RegistrationDenied)
        assert error.command == "AT+CGREG?"

    drive(body, network=False)


def test_registration_bound_without_signal_is_no_signal():
    async def body(fake, driver):
        # the settings line's round of queries fits in the bound (5 ms), then CSQ
        script_settings(fake, ok(b"+CEREG: 1,2", b"+CGREG: 0,2"))
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 99,99"))
        await caught(driver.wait_registered(timeout_ms=5), NoSignal)

    drive(body, (None,), network=False)


def test_registration_bound_with_signal_is_a_timeout():
    async def body(fake, driver):
        script_settings(fake, ok(b"+CEREG: 1,2", b"+CGREG: 0,2"))
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 17,0"))
        error = await caught(driver.wait_registered(timeout_ms=5), Timeout)
        assert error.what == "network registration"

    drive(body, (None,), network=False)


def test_attach_runs_the_whole_sequence():
    async def body(fake, driver):
        fake.expect(b"AT+CPIN?", ok(b"+CPIN: READY"))
        script_registered(fake, settings=attach_settings(b"iot.example"))
        script_net_open(fake)
        await driver.attach("iot.example")
        assert driver.net == NET_OPEN and driver.ip is None  # AT+IPADDR is netstat's

    drive(body, network=False)


def test_apn_with_a_quote_is_refused_before_the_wire():
    for apn in ('a"b', "a\rb", "a\nb"):
        assert raises(ConfigError, apn_setting, apn).key == "modem.apn"


def test_netopen_urc_before_ok_is_accepted():
    async def body(fake, driver):
        fake.expect(b"AT+NETOPEN", framed(b"+NETOPEN: 0") + ok())
        await driver.net_open()
        assert driver.net == NET_OPEN

    drive(body, network=False)


def test_netopen_failure_forms():
    async def body(fake, driver):
        fake.expect(b"AT+NETOPEN", ok() + framed(b"+NETOPEN: 1"))
        error = await caught(driver.net_open(), NetError)
        assert (error.operation, error.code) == ("NETOPEN", 1)
        fake.expect(b"AT+NETOPEN", framed(b"ERROR"))
        error = await caught(driver.net_open(), AtError)
        assert error.kind == "ERROR" and driver.net == NET_DOWN

    drive(body, network=False)


def test_netopen_when_already_open_starts_clean():
    async def body(fake, driver):
        fake.expect(b"AT+NETOPEN", framed(b"+IP ERROR: Network is already opened", b"ERROR"))
        script_net_close(fake)
        script_net_open(fake)
        await driver.net_open()
        assert driver.net == NET_OPEN

    drive(body, network=False)


def test_netopen_urc_that_never_comes():
    async def body(fake, driver):
        driver.channel.timeouts["+NETOPEN"] = 100
        fake.expect(b"AT+NETOPEN", ok())
        error = await caught(driver.net_open(), Timeout)
        assert error.what == "+NETOPEN URC" and driver.net == NET_DOWN

    drive(body, (None,), network=False)


def test_netclose_and_not_open():
    async def body(fake, driver):
        await driver.net_close()  # nothing sent: AT+NETCLOSE is owed to the next that needs it
        assert driver.net == NET_CLOSING and driver.ip is None and fake.done()
        script_net_close(fake)
        script_net_open(fake)
        await driver.net_open()
        await driver.net_close()
        fake.expect(b"AT+NETCLOSE", framed(b"+NETCLOSE: 2", b"ERROR"))
        script_net_open(fake)
        await driver.net_open()
        await driver.net_close()
        fake.expect(b"AT+NETCLOSE", framed(b"+IP ERROR: Network is already closed", b"ERROR"))
        await driver.close()  # closing the driver pays it
        assert driver.net == NET_DOWN

    drive(body)


def test_power_off():
    async def body(fake, driver):
        fake.expect(b"AT+CPOF", ok())
        await driver.power_off()
        assert driver.net == NET_DOWN
        await caught(driver.open_link("127.0.0.1", 1), StateError)

    drive(body)
