# The network's time (issue 17 item 1, the modem side), against the scripted modem on
# both runtimes: AT+CTZU=1 once per MCU boot (on the settings line), the +CTZV of the registration or AT+CCLK?,
# AT+CNTP when configured; a garbled or impossible clock is an AtError "bad clock" that
# ModemTransport keeps as clock_error instead of failing the window.
from cellmqtt import port
from cellmqtt.errors import AtError, ModemError
from cellmqtt.modem.sim7600 import Sim7600, utc_seconds
from cellmqtt.transport import ModemTransport
from modem_fakes import drive, framed, ok, script_registered
from support import caught, raises

MAY_2031 = 1935360000  # 2031-05-01T00:00:00Z


def test_clock_lines_to_utc():
    assert utc_seconds("AT+CCLK?", b'+CCLK: "31/05/01,00:00:00+00"') == MAY_2031
    # local time two hours ahead, the zone in quarter hours
    assert utc_seconds("AT+CCLK?", b'+CCLK: "31/05/01,02:00:00+08"') == MAY_2031
    assert utc_seconds("AT+CCLK?", b'+CCLK: "31/04/30,19:00:00-20"') == MAY_2031
    # +CTZV carries universal time: its zone does not move it
    assert utc_seconds("+CTZV", b'+CTZV: +32,"31/05/01,00:00:00",0') == MAY_2031
    assert utc_seconds("AT+CCLK?", b'+CCLK: "24/02/29,23:59:59+00"') == 1709251199
    assert utc_seconds("AT+CCLK?", b'+CCLK: "24/01/01,00:00:00+00"') == 1704067200


def test_a_ctzv_report_is_the_time_when_it_came_and_its_age_is_rounded_to_the_second():
    async def body(fake, driver):
        came = port.ticks_add(port.ticks_ms(), -1600)
        driver.zone_report = (b'+CTZV: +08,"31/05/01,00:00:00",0', came)
        assert await driver.network_time() == (MAY_2031, came)
        # 1.6 s ago: 2 s later than the report, not 1 (the clock is placed within a second)
        transport = ModemTransport({}, None, None)
        transport.modem = driver
        await transport._clock()
        assert transport.utc == MAY_2031 + 2

    drive(body, network=False)


def test_garbled_early_or_out_of_zone_clocks_are_bad_clock_errors():
    for line in (b'+CCLK: "80/01/06,00:00:0"', b'+CCLK: "23/12/31,23:59:59+00"',
                 b'+CCLK: "31/05/01,00:00:00+57"', b'+CCLK: "31/05/01,00:00:00-60"',
                 b'+CCLK: "31/13/01,00:00:00+00"', b'+CCLK: "31/02/29,00:00:00+00"',
                 b'+CCLK: "31/05/01,24:00:00+00"', b'+CCLK: "31/05/01 00:00:00+00"',
                 b'+CCLK: "31/05/01,00:00:00"', b'+CCLK: "3a/05/01,00:00:00+00"', b"+CCLK: ",
                 b'+CTZV: +99,"31/05/01,00:00:00",0', b"\xff\xfe"):
        error = raises(AtError, utc_seconds, "AT+CCLK?", line)
        assert isinstance(error, ModemError) and error.kind == "bad clock", line


def test_ctzu_once_per_boot_then_the_registrations_ctzv():
    async def body(fake, driver):
        Sim7600.zone_auto = False  # a fresh MCU boot
        try:
            # on the settings line, before registration so that it brings +CTZV
            fake.expect(b"ATE0+CTZU=1;+CEREG=1;+CEREG?;+CGREG?", ok(b"+CEREG: 1,2", b"+CGREG: 0,2")
                        + framed(b'+CTZV: +08,"31/05/01,00:00:00",0', b"+CEREG: 1"))
            await driver.wait_registered()
            # no command: the report, plus the seconds since it came
            utc, came = await driver.network_time()
            assert utc == MAY_2031 and 0 <= port.ticks_diff(port.ticks_ms(), came) <= 3000
            script_registered(fake)  # the modem keeps AT+CTZU=1: not sent again this boot
            await driver.wait_registered()
            # refused (a line refused goes one by one): asked again in the next window
            Sim7600.zone_auto = False
            fake.expect(b"ATE0+CTZU=1;+CEREG=1;+CEREG?;+CGREG?", framed(b"ERROR"))
            fake.expect(b"ATE0", ok())
            fake.expect(b"AT+CTZU=1", framed(b"ERROR"))
            fake.expect(b"AT+CEREG=1", ok())
            fake.expect(b"AT+CEREG?", ok(b"+CEREG: 1,1"))
            await driver.wait_registered()
            assert not Sim7600.zone_auto
        finally:
            Sim7600.zone_auto = True

    drive(body, network=False)


def test_cclk_without_a_report_and_ntp_when_configured():
    async def body(fake, driver):
        fake.expect(b"AT+CCLK?", ok(b'+CCLK: "31/05/01,02:00:00+08"'))
        assert (await driver.network_time())[0] == MAY_2031
        # a clock the network never set: NTP, once, then the clock again
        fake.expect(b"AT+CCLK?", ok(b'+CCLK: "80/01/06,00:00:0"'))
        fake.expect(b'AT+CNTP="pool.ntp.org",0', ok())
        fake.expect(b"AT+CNTP", framed(b"+CNTP: 0") + ok())
        fake.expect(b"AT+CCLK?", ok(b'+CCLK: "80/01/06,00:00:0"'))
        error = await caught(driver.network_time(), AtError)
        assert error.kind == "bad clock" and "80/01/06" in str(error)
        driver.clock = "ntp"
        fake.expect(b'AT+CNTP="pool.ntp.org",0', ok())
        fake.expect(b"AT+CNTP", ok() + framed(b"+CNTP: 0"))
        fake.expect(b"AT+CCLK?", ok(b'+CCLK: "31/05/01,00:00:00+00"'))
        assert (await driver.network_time())[0] == MAY_2031
        fake.expect(b'AT+CNTP="pool.ntp.org",0', ok())
        fake.expect(b"AT+CNTP", ok() + framed(b"+CNTP: 4"))
        error = await caught(driver.network_time(), AtError)
        assert error.kind == "bad clock" and error.command == "AT+CNTP"
        driver.clock = "off"
        assert await driver.network_time() is None

    drive(body, network=False)


def test_the_transport_keeps_a_bad_clock_as_its_error_and_goes_on():
    class Modem:
        def __init__(self, answer):
            self.answer = answer

        async def network_time(self):
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    async def main():
        good = ModemTransport({}, None, None)
        good.modem = Modem((MAY_2031, port.ticks_ms()))
        await good._clock()
        assert (good.utc, good.clock_error) == (MAY_2031, None)
        bad = ModemTransport({}, None, None)
        bad.modem = Modem(AtError("AT+CCLK?", "bad clock", '+CCLK: "80/01/06,00:00:0"'))
        await bad._clock()
        assert bad.utc is None and "bad clock" in bad.clock_error

    from support import run

    run(main())
