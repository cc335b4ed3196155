# What real SIM7600s (and modems of their family) send in the field, survived by the
# parser, the AT channel and the driver, against the scripted modem.
import asyncio

from cellmqtt.errors import AtError, LinkClosed, NetError, SimError
from cellmqtt.ledger import LINK, Ledger
from cellmqtt.modem.at_parser import FINAL, LINE, PAYLOAD, AtParser
from cellmqtt.modem.link import ESTABLISHED
from cellmqtt.modem.sim7600 import NET_LOST, NET_OPEN
from modem_fakes import (
    CHUNKS, FakeModem, attach_settings, channel_with, drive, framed, ok, rxget_reply, script_close, script_net_close,
    script_net_open, script_open, script_receive, script_settings, script_send)
from parser_events import events_of
from support import caught, run

BOOT = (b"RDY", b"+CPIN: READY", b"SMS DONE", b"PB DONE")
LATE_IP_ERROR = b"\r\n+IP ERROR: Network not opened\r\n\r\nERROR\r\n"


def _check(data, expected):
    for chunk in (None, 1, 3, 7):
        assert events_of(data, chunk) == expected, (chunk, events_of(data, chunk))


def _scenario(body, chunks=CHUNKS):
    """body(fake, channel) on a channel of its own, for each way of splitting the
    modem's bytes; afterwards the script is used up and the ledger empty."""
    for chunk in chunks:
        book = Ledger()

        async def main():
            fake = FakeModem(chunk)
            channel = channel_with(fake, book)
            try:
                await body(fake, channel)
                assert fake.done(), fake.leftover()
            finally:
                await channel.close()

        run(main())
        assert len(book) == 0, book.entries()


def _owed_once(data):
    """A reply that is `data` the first time it is asked for and empty after: bytes a
    modem sends before any later answer, whenever they were due."""
    left = [data]

    def take():
        out, left[0] = left[0], b""
        return out

    return take


async def _routed(fake):
    # let the reader route everything the fake has sent
    while fake.queued():
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)


# a late +IP ERROR owes one ERROR, and no more

def test_a_late_ip_error_owes_one_error_not_two():
    parser = AtParser()
    assert events_of(LATE_IP_ERROR + b"\r\nERROR\r\n", parser=parser) == [
        (FINAL, b"+IP ERROR: Network not opened"), (FINAL, b"ERROR")]
    assert parser.swallowed == 1


def test_a_late_ip_error_leaves_the_next_commands_error_alone():
    async def body(fake, channel):
        fake.push(LATE_IP_ERROR)  # the answer of a command given up long ago
        await _routed(fake)
        fake.expect(b"AT+NETOPEN", framed(b"ERROR"))  # a NETOPEN failure, as real modems report it
        error = await caught(channel.command("AT+NETOPEN", timeout_ms=500), AtError)
        assert error.kind == "ERROR"

    _scenario(body)


# the trailing ERRORs of +CIPERROR are its own, however late they come

def test_trailing_errors_later_than_a_moment_are_owed_to_their_ciperror():
    async def body(fake, channel):
        channel.timeouts["late"] = 1000
        trailing = _owed_once(framed(b"ERROR", b"ERROR"))
        fake.expect(b"AT+CIPSEND=0,3", framed(b"+CIPERROR: 4"))
        fake.expect(b"AT+CIPCLOSE=0", lambda: trailing() + ok())
        fake.expect(b"AT+NETCLOSE", lambda: trailing() + ok())
        error = await caught(channel.command("AT+CIPSEND=0,3", data=b"abc"), AtError)
        assert (error.kind, error.code) == ("CIPERROR", 4)

        async def later():
            await asyncio.sleep(0.15)
            fake.push(trailing())

        task = asyncio.create_task(later())
        await channel.command("AT+CIPCLOSE=0")
        await channel.command("AT+NETCLOSE")
        await task

    _scenario(body)


def test_trailing_errors_that_never_come_cost_only_the_late_bound():
    async def body(fake, channel):
        fake.expect(b"AT+CIPSEND=0,3", framed(b"+CIPERROR: 4", b"ERROR"))  # one, as the manual says
        fake.expect(b"AT+CIPCLOSE=0", framed(b"ERROR"))
        await caught(channel.command("AT+CIPSEND=0,3", data=b"abc"), AtError)
        error = await caught(channel.command("AT+CIPCLOSE=0", timeout_ms=1000), AtError)
        assert error.kind == "ERROR"

    _scenario(body)


# URCs and payload headers match by name and first field, whatever the spacing

def test_arrival_urc_without_the_space_is_read():
    async def body(fake, driver):
        driver.channel.timeouts["read"] = 300  # it was a silent stall: fail fast
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"+CIPRXGET:1,0"))
        script_receive(fake, 0, b"\x20\x02\x00\x00")
        assert await link.read(100) == b"\x20\x02\x00\x00"
        script_close(fake, 0)
        await link.close()

    drive(body)


def test_payload_header_without_the_space_is_read_by_length():
    data = b"\r\nOK\r\n+IPCLOSE: 0,1\r\n"
    header = b"+CIPRXGET:2,0,%d,0" % len(data)
    _check(b"\r\n" + header + b"\r\n" + data + b"\r\nOK\r\n", [(LINE, header), (PAYLOAD, data), (FINAL, b"OK")])
    header = b"+CCHRECV:DATA,1,%d" % len(data)
    _check(b"\r\n" + header + b"\r\n" + data + b"\r\nOK\r\n", [(LINE, header), (PAYLOAD, data), (FINAL, b"OK")])

    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"+CIPRXGET: 1,0"))
        fake.expect(b"AT+CIPRXGET=2,0,1500", b"\r\n+CIPRXGET:2,0,%d,0\r\n" % len(data) + data + b"\r\nOK\r\n")
        assert await link.read(100) == data
        script_close(fake, 0)
        await link.close()

    drive(body)


# finals match with trailing whitespace stripped

def test_finals_with_trailing_spaces():
    _check(b"\r\nOK \r\n", [(FINAL, b"OK")])
    _check(b"\r\nERROR  \r\n", [(FINAL, b"ERROR")])
    _check(b"\r\n+CME ERROR: 10 \r\n", [(FINAL, b"+CME ERROR: 10")])

    async def body(fake, channel):
        fake.expect(b"AT+CSQ", b"\r\n+CSQ: 20,99\r\n\r\nOK \r\n")
        fake.expect(b"AT+CGATT=1", b"\r\nERROR \r\n")
        assert (await channel.command("AT+CSQ", timeout_ms=500)).lines == [b"+CSQ: 20,99"]
        error = await caught(channel.command("AT+CGATT=1", timeout_ms=500), AtError)
        assert error.kind == "ERROR"

    _scenario(body)


# SIM failure at boot: retried like SIM busy before it is believed

def test_sim_failure_at_boot_is_retried_like_sim_busy():
    async def body(fake, driver):
        fake.expect(b"AT+CPIN?", framed(b"+CME ERROR: 13"))
        fake.expect(b"AT+CPIN?", framed(b"+CME ERROR: SIM failure"))
        fake.expect(b"AT+CPIN?", framed(b"+CME ERROR: SIM busy"))
        fake.expect(b"AT+CPIN?", ok(b"+CPIN: READY"))
        await driver.check_sim()
        assert driver.sim == "READY"

    drive(body, network=False)


def test_sim_failure_that_lasts_is_believed_at_the_bound():
    async def body(fake, driver):
        driver.channel.timeouts["sim"] = 300
        for _ in range(60):
            fake.expect(b"AT+CPIN?", framed(b"+CME ERROR: 13"))
        error = await caught(driver.check_sim(), SimError)
        assert (error.state, error.code) == ("SIM failure", 13)
        assert len(fake.script) < 59  # asked again, not believed at once
        fake.script.clear()

    drive(body, (None,), network=False)


# (the power-up wait with margin, from config: test_power.py and test_config.py)


# boot URCs, repeated and late

def test_boot_urcs_repeated_and_late():
    async def body(fake, driver):
        # a third RDY forgets the SIM state; the +CPIN: READY after it is believed
        fake.expect(b"AT", framed(*BOOT) + framed(*BOOT) + framed(b"RDY", b"+CPIN: READY", b"SMS DONE")
                    + b"AT\r\r\nOK\r\n")
        await driver.power_up()
        assert driver.booted and driver.sim == "READY"
        # no AT+CPIN?: the modem said READY; boot URCs between the line's answers
        script_settings(fake, framed(b"PB DONE", b"+CPIN: READY", b"+CEREG: 1,1", b"SMS DONE", b"+CGREG: 0,2",
                                     b"PB DONE") + ok(), attach_settings())
        script_net_open(fake)
        await driver.attach("iot")
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"SMS DONE", b"PB DONE", b"+CPIN: READY"))  # late, mid-session
        script_send(fake, 0, b"\xc0\x00")
        await link.write(b"\xc0\x00")
        assert link.state == ESTABLISHED and driver.net == NET_OPEN
        script_close(fake, 0)
        await link.close()

    drive(body, network=False)


def test_urc_between_a_command_and_its_echo_or_answer():
    async def body(fake, driver):
        fake.expect(b"AT", framed(b"SMS DONE") + b"AT\r" + framed(b"+CPIN: READY", b"PB DONE")
                    + b"\r\nOK\r\n")
        await driver.power_up()
        fake.expect(b"AT+CSQ", framed(b"SMS DONE", b"+CSQ: 20,99", b"PB DONE") + b"\r\nOK\r\n")
        assert await driver.signal() == (20, 99)
        script_net_open(fake)
        await driver.net_open()
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.expect(b"AT+CIPSEND=0,2", framed(b"+CIPRXGET: 1,0") + b"\r\n>")
        fake.expect_data(b"\xc0\x00", framed(b"+IPCLOSE: 5,1") + ok() + framed(b"+CIPSEND: 0,2,2"))
        await link.write(b"\xc0\x00")
        script_receive(fake, 0, b"\xd0\x00")
        assert await link.read(10) == b"\xd0\x00"
        script_close(fake, 0)
        await link.close()

    drive(body, network=False)


def test_unanswered_cpin_is_answered_on_retry():
    async def body(fake, driver):
        driver.channel.timeouts["+CPIN"] = 50  # well inside the "sim" bound
        fake.expect(b"AT+CPIN?")  # early in boot it may go unanswered
        fake.expect(b"AT+CPIN?", ok(b"+CPIN: READY"))
        await driver.check_sim()
        assert driver.sim == "READY"

    drive(body, network=False)


def test_registration_stat_11_or_unknown_before_home_or_roaming():
    async def body(fake, driver):
        script_settings(fake, ok(b"+CEREG: 1,4", b"+CGREG: 0,11"))
        fake.expect(b"AT+CEREG?", ok(b"+CEREG: 1,11"))
        fake.expect(b"AT+CGREG?", ok(b"+CGREG: 0,5"))
        assert await driver.wait_registered() == 5
        script_settings(fake, ok(b"+CEREG: 1,4", b"+CGREG: 0,2") + framed(b"+CEREG: 11", b"+CEREG: 1"))
        assert await driver.wait_registered() == 1

    drive(body, network=False)


def test_an_unanswered_registration_query_is_asked_again():
    # like AT+CPIN?, one query that gets no answer is not the end of registration
    async def body(fake, driver):
        driver.channel.timeouts["+CEREG"] = 50  # well inside the "register" bound
        script_settings(fake, ok(b"+CEREG: 1,2", b"+CGREG: 0,2"))
        fake.expect(b"AT+CEREG?")
        fake.expect(b"AT+CGREG?", ok(b"+CGREG: 0,2"))
        fake.expect(b"AT+CEREG?", ok(b"+CEREG: 1,1"))
        assert await driver.wait_registered() == 1

    drive(body, network=False)


def test_network_closed_unexpectedly_without_ipclose():
    async def body(fake, driver):
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(framed(b"+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY"))  # and no +IPCLOSE
        error = await caught(link.read(10), LinkClosed)
        assert error.reason == "network closed unexpectedly" and driver.net == NET_LOST
        assert driver.ledger.count(LINK) == 0
        await caught(link.write(b"x"), LinkClosed)
        script_net_close(fake)
        script_net_open(fake)
        await driver.net_open()
        assert driver.net == NET_OPEN

    drive(body)


def test_cipopen_result_before_the_ok_of_cipopen():
    async def body(fake, driver):
        fake.expect(b'AT+CIPOPEN=0,"TCP","127.0.0.1",1883', framed(b"+CIPOPEN: 0,0") + ok())
        link = await driver.open_link("127.0.0.1", 1883)
        assert link.state == ESTABLISHED
        fake.expect(b'AT+CIPOPEN=1,"TCP","127.0.0.1",1884', framed(b"+CIPOPEN: 1,1") + ok())
        error = await caught(driver.open_link("127.0.0.1", 1884), NetError)
        assert error.code == 1 and driver.ledger.count(LINK) == 1
        script_close(fake, 0)
        await link.close()

    drive(body)


def test_blank_lines_around_answers():
    async def body(fake, driver):
        fake.expect(b"AT+CSQ", b"\r\n\r\n\r\n+CSQ: 20,99\r\n\r\n\r\n\r\nOK\r\n\r\n\r\n")
        assert await driver.signal() == (20, 99)
        fake.expect(b'AT+CIPOPEN=0,"TCP","127.0.0.1",1883', b"\r\n\r\nOK\r\n\r\n\r\n\r\n+CIPOPEN: 0,0\r\n\r\n")
        link = await driver.open_link("127.0.0.1", 1883)
        fake.push(b"\r\n\r\n+CIPRXGET: 1,0\r\n\r\n\r\n")
        fake.expect(b"AT+CIPRXGET=2,0,1500", b"\r\n\r\n" + rxget_reply(0, b"\r\n\x20\x02") + b"\r\n\r\n")
        assert await link.read(10) == b"\r\n\x20\x02"
        script_close(fake, 0)
        await link.close()

    drive(body)


def test_output_in_one_to_seven_byte_pieces():
    async def body(fake, driver):
        fake.expect(b"AT", b"AT\r\r\nOK\r\n")
        await driver.power_up()
        fake.expect(b"AT+CPIN?", b"AT+CPIN?\r" + ok(b"+CPIN: READY"))
        line = b"ATE0+CEREG=1" + attach_settings() + b";+CEREG?;+CGREG?"
        script_settings(fake, line + b"\r" + ok(b"+CEREG: 1,1", b"+CGREG: 0,2"), attach_settings())  # its echo too
        script_net_open(fake)
        await driver.attach("iot")
        script_open(fake, 0)
        link = await driver.open_link("127.0.0.1", 1883)
        script_send(fake, 0, b"\x10\x0c\x00\x04MQTT")
        await link.write(b"\x10\x0c\x00\x04MQTT")
        fake.push(framed(b"+CIPRXGET: 1,0"))
        script_receive(fake, 0, b"\x20\x02\x00\x00\r\nOK\r\n")
        assert await link.read(100) == b"\x20\x02\x00\x00\r\nOK\r\n"
        script_close(fake, 0)
        await link.close()
        script_net_close(fake)
        await driver.net_close()
        await driver.close()  # pays the AT+NETCLOSE that net_close() left owed

    drive(body, tuple(range(1, 8)) + ((3, 1, 7, 2, 6, 4, 5),), network=False)
