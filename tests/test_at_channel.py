import asyncio

from cellmqtt import port
from cellmqtt.errors import AtError, ConfigError, LimitExceeded, ModemError, Timeout
from cellmqtt.ledger import HANDLER, TASK, UART, Ledger
from cellmqtt.modem.at import TIMEOUTS_MS, AtChannel, Command, check_timeouts, command_name
from modem_fakes import CHUNKS, FakeModem, channel_with, framed, ok
from support import caught, raises, run, until


def scenario(body, chunks=CHUNKS):
    """Run body(fake, channel, urcs) for each way of splitting the modem's bytes;
    afterwards the script is used up and the ledger is empty again."""
    for chunk in chunks:
        book = Ledger()

        async def main():
            fake = FakeModem(chunk)
            channel = channel_with(fake, book)
            urcs = []
            channel.subscribe((b"+CIPRXGET: 1,", b"+IPCLOSE:", b"RDY", b"+IPD"),
                              lambda line, chunk: urcs.append(line if chunk is None else chunk))
            assert book.count(UART, "AT") == 1 and book.count(TASK, "AT") == 1
            try:
                await body(fake, channel, urcs)
                assert fake.done(), fake.leftover()
            finally:
                await channel.close()

        run(main())
        assert len(book) == 0, book.entries()


def test_command_names_and_the_timeout_table():
    assert command_name("AT") == "AT"
    assert command_name("ATE0") == "E0"
    assert command_name("AT+CSQ") == "+CSQ"
    assert command_name("AT+CREG?") == "+CREG"
    assert command_name("AT+CIPRXGET=2,0,1500") == "+CIPRXGET"
    assert TIMEOUTS_MS["AT"] == 1000
    for name in ("+NETOPEN", "+CIPOPEN", "+CIPSEND"):
        assert TIMEOUTS_MS[name] == 120000


def test_the_tls_and_ppp_bounds_load_only_when_one_is_asked_for():
    import sys

    sys.modules.pop("cellmqtt.modem.timeouts_tls_ppp", None)
    channel = AtChannel(None, ledger=Ledger())
    # the AT path's names, its settings line's among them
    assert [channel.timeout(name) for name in ("AT", "E0+CTZU", "+CSQ", "+CCLK", "+CIPOPEN", "late")] == [
        1000, 9000, 9000, 9000, 120000, 1000]
    assert "cellmqtt.modem.timeouts_tls_ppp" not in sys.modules
    assert channel.timeout("dial") == 60000 and channel.timeout("O") == 20000
    assert channel.timeout("+CCHOPEN") == 120000 and channel.timeout("+CCERTDOWN") == 20000
    assert channel.timeout("+CCHRECV") == 9000 and channel.timeout("&D1") == 9000
    check_timeouts({"ppp_up": 5000, "+CCHSEND": 5000})


def test_timeouts_are_configurable_and_checked():
    overrides = {"+CIPOPEN": 5000, "+COPS": 75000}
    check_timeouts(overrides)
    channel = AtChannel(None, timeouts=overrides, ledger=Ledger())
    assert channel.timeout("+CIPOPEN") == 5000 and channel.timeout("+COPS") == 75000 and channel.timeout("AT") == 1000
    assert raises(ConfigError, check_timeouts, {"bogus": 5}).key == "modem.timeouts.bogus"
    assert raises(ConfigError, check_timeouts, {"+CSQ": 0}).key == "modem.timeouts.+CSQ"
    assert raises(ConfigError, check_timeouts, {"+CSQ": "9"}).key == "modem.timeouts.+CSQ"


def test_response_lines_belong_to_their_command():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 20,99"))
        response = await channel.command("AT+CSQ")
        assert response.lines == [b"+CSQ: 20,99"] and urcs == []

    scenario(body)


def test_echo_on_is_survived():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CSQ", b"AT+CSQ\r" + ok(b"+CSQ: 7,0"))
        fake.expect(b"ATE0", b"ATE0\r\r\nOK\r\n")
        assert (await channel.command("AT+CSQ")).lines == [b"+CSQ: 7,0"]
        assert (await channel.command("ATE0")).lines == []

    scenario(body)


def test_urc_inside_a_response_goes_to_subscribers():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CSQ", b"\r\n+CSQ: 20,99\r\n\r\n+CIPRXGET: 1,3\r\n\r\nRDY\r\n\r\nOK\r\n")
        assert (await channel.command("AT+CSQ")).lines == [b"+CSQ: 20,99"]
        assert urcs == [b"+CIPRXGET: 1,3", b"RDY"]

    scenario(body)


def test_urc_between_command_and_echo():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CSQ", b"\r\n+IPCLOSE: 1,1\r\nAT+CSQ\r\r\n+CSQ: 3,3\r\n\r\nOK\r\n")
        assert (await channel.command("AT+CSQ")).lines == [b"+CSQ: 3,3"]
        assert urcs == [b"+IPCLOSE: 1,1"]

    scenario(body)


def test_rxget_one_while_rxget_two_is_awaited_is_a_urc():
    data = b"+CIPRXGET: 1,0\r\nOK\r\n"  # the payload even looks like the hazard
    reply = (framed(b"+CIPRXGET: 1,0") + b"\r\n+CIPRXGET: 2,0,%d,0\r\n" % len(data) + data
             + framed(b"+CIPRXGET: 1,0") + b"\r\nOK\r\n")

    async def body(fake, channel, urcs):
        fake.expect(b"AT+CIPRXGET=2,0,1500", reply)
        buffer = bytearray(1500)
        response = await channel.command("AT+CIPRXGET=2,0,1500", into=buffer)
        assert response.lines == [b"+CIPRXGET: 2,0,%d,0" % len(data)]
        assert bytes(buffer[:response.payload_len]) == data
        assert urcs == [b"+CIPRXGET: 1,0", b"+CIPRXGET: 1,0"]

    scenario(body)


def test_rxget_four_answer_is_the_response():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CIPRXGET=4,0", framed(b"+CIPRXGET: 1,0") + ok(b"+CIPRXGET: 4,0,120"))
        assert (await channel.command("AT+CIPRXGET=4,0")).lines == [b"+CIPRXGET: 4,0,120"]
        assert urcs == [b"+CIPRXGET: 1,0"]

    scenario(body)


def test_payload_without_a_buffer_is_collected():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CIPRXGET=2,1,10", b"\r\n+CIPRXGET: 2,1,4,0\r\n\r\nOK\r\n\r\nOK\r\n")
        response = await channel.command("AT+CIPRXGET=2,1,10")
        assert bytes(response.payload) == b"\r\nOK" and response.payload_len == 4

    scenario(body)


def test_payload_in_pieces_is_gathered_in_one_buffer_of_its_announced_size():
    command = Command("AT+CIPRXGET=2,1,10", "+CIPRXGET", None, None, None, None, False)
    command.take(b"ab", 4)
    gathered = command.payload
    assert type(gathered) is bytearray and len(gathered) == 6
    command.take(b"cdef", 0)
    assert command.payload is gathered and gathered == b"abcdef" and command.payload_len == 6
    command.take(b"gh", 0)  # a later payload of the command extends it
    assert command.payload == b"abcdefgh" and command.payload_len == 8


def test_payload_larger_than_the_buffer_is_a_typed_error():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CIPRXGET=2,0,4", b"\r\n+CIPRXGET: 2,0,6,0\r\nabcdef\r\nOK\r\n")
        fake.expect(b"AT", ok())
        buffer = bytearray(4)
        error = None
        try:
            await channel.command("AT+CIPRXGET=2,0,4", into=buffer)
        except LimitExceeded as caught:
            error = caught
        assert error is not None and bytes(buffer) == b"abcd"
        await channel.command("AT")

    scenario(body)


def test_push_mode_payload_goes_to_the_urc_subscriber():
    async def body(fake, channel, urcs):
        fake.push(b"\r\n+IPD5\r\n\r\nOK\r\n")
        fake.expect(b"AT", ok())
        await channel.command("AT")
        assert b"".join(urcs[1:]) == b"\r\nOK\r" and urcs[0] == b"+IPD5"

    scenario(body, (None, 1))


def test_a_urc_line_is_not_held_after_it_was_routed():
    # kept only for the payload it announces: the +IPCLOSE at a link's end must not stay
    # referenced by the channel until the modem's next line (the bench's floor over the
    # link moved by that line's block, depending on when the URC came)
    async def body(fake, channel, urcs):
        fake.push(b"\r\n+IPCLOSE: 0,1\r\n")
        while not urcs:
            await asyncio.sleep(0)
        assert urcs == [b"+IPCLOSE: 0,1"] and channel._payload_to is None
        fake.push(b"\r\n+IPD3\r\nabc")
        while b"".join(urcs[2:]) != b"abc":
            await asyncio.sleep(0)
        assert urcs[1] == b"+IPD3" and channel._payload_to is None  # its payload is through

    scenario(body)


def test_send_with_prompt_and_urc_before_it():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CIPSEND=0,5", b"\r\n+CIPRXGET: 1,1\r\n\r\n>")
        fake.expect_data(b"hello", ok() + framed(b"+CIPSEND: 0,5,5"))
        response = await channel.command("AT+CIPSEND=0,5", data=b"hello")
        assert urcs == [b"+CIPRXGET: 1,1"] and response.lines == []

    scenario(body)


def test_data_arriving_during_a_send():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CIPSEND=2,3", b"\r\n>")
        fake.expect_data(b"abc", framed(b"+CIPRXGET: 1,2") + b"\r\nOK\r\n" + framed(b"+CIPRXGET: 1,0"))
        fake.expect(b"AT", ok())
        await channel.command("AT+CIPSEND=2,3", data=memoryview(b"xabc")[1:])
        await channel.command("AT")  # what came after OK has been routed by now
        assert urcs == [b"+CIPRXGET: 1,2", b"+CIPRXGET: 1,0"]

    scenario(body)


def test_error_instead_of_the_prompt():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CIPSEND=4,3", framed(b"+CIPERROR: 4", b"ERROR", b"ERROR"))
        fake.expect(b"AT", ok())
        error = None
        try:
            await channel.command("AT+CIPSEND=4,3", data=b"abc")
        except AtError as caught:
            error = caught
        assert error.kind == "CIPERROR" and error.code == 4
        assert b"abc" not in fake.written
        await channel.command("AT")  # the two trailing ERRORs did not end this one

    scenario(body)


def test_prompt_that_never_comes_is_paid_in_zeros():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CIPSEND=0,5")  # the prompt comes too late for us
        fake.expect_data(bytes(5))  # so the modem gets its 5 bytes, but not our data
        fake.expect(b"AT", ok())
        error = None
        try:
            await channel.command("AT+CIPSEND=0,5", timeout_ms=30, data=b"hello")
        except Timeout as caught:
            error = caught
        assert error is not None and b"hello" not in fake.written
        await channel.command("AT")

    scenario(body, (None,))


def test_a_send_given_up_just_before_its_prompt_still_sends_the_data():
    async def body(fake, channel, urcs):
        # cancelled (an MQTT teardown) while the prompt is on its way: the modem then
        # takes our bytes, so the peer gets the whole packet, not zeros
        fake.expect(b"AT+CIPSEND=0,4")
        fake.expect_data(b"@\x02\x00\x01", ok() + framed(b"+CIPSEND: 0,4,4"))
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 20,99"))
        task = asyncio.create_task(channel.command("AT+CIPSEND=0,4", data=b"@\x02\x00\x01"))
        await port.asleep_ms(20)
        task.cancel()
        await port.asleep_ms(5)
        task.cancel()  # a second one, as MicroPython's wait_for can deliver: held too
        await port.asleep_ms(5)
        fake.push(b"\r\n>")
        await caught(task, asyncio.CancelledError)
        assert bytes(4) not in fake.written
        assert (await channel.command("AT+CSQ")).lines == [b"+CSQ: 20,99"]

    scenario(body)


def test_every_error_form_is_typed():
    cases = (
        (b"ERROR", "ERROR", None),
        (b"+CME ERROR: 10", "CME", 10),
        (b"+CME ERROR: SIM busy", "CME", "SIM busy"),
        (b"+CMS ERROR: 500", "CMS", 500),
        (b"+IP ERROR: Network is already opened", "IP", "Network is already opened"),
        (b"+IP ERROR: Network not opened", "IP", "Network not opened"),
        (b"+IP ERROR: Invalid parameter", "IP", "Invalid parameter"),
        (b"+CIPERROR: 2", "CIPERROR", 2),
    )

    async def body(fake, channel, urcs):
        for line, kind, code in cases:
            trailing = (b"ERROR",) if kind in ("IP", "CIPERROR") else ()
            fake.expect(b"AT+NETOPEN", framed(line, *trailing))
            error = None
            try:
                await channel.command("AT+NETOPEN")
            except AtError as caught:
                error = caught
            assert (error.kind, error.code, error.command) == (kind, code, "AT+NETOPEN")
        fake.expect(b"AT", ok())
        await channel.command("AT")

    scenario(body)


def test_info_line_then_error_is_kept_with_the_error():
    async def body(fake, channel, urcs):
        fake.expect(b'AT+CIPOPEN=1,"TCP","h",1', framed(b"+CIPOPEN: 1,3", b"ERROR"))
        error = None
        try:
            await channel.command('AT+CIPOPEN=1,"TCP","h",1')
        except AtError as caught:
            error = caught
        assert error.lines == [b"+CIPOPEN: 1,3"] and urcs == []

    scenario(body)


def test_first_field_decides_for_set_commands():
    async def body(fake, channel, urcs):
        got = []
        channel.subscribe((b"+CIPOPEN:",), lambda line, chunk: got.append(line))
        # a late URC of link 0 while link 1 is being opened is not link 1's answer
        fake.expect(b'AT+CIPOPEN=1,"TCP","h",1', framed(b"+CIPOPEN: 0,0") + ok())
        response = await channel.command('AT+CIPOPEN=1,"TCP","h",1')
        assert response.lines == [] and got == [b"+CIPOPEN: 0,0"]

    scenario(body, (None,))


def test_custom_match():
    async def body(fake, channel, urcs):
        fake.expect(b"ATI", ok(b"Manufacturer: SIMCOM INCORPORATED", b"Model: SIMCOM_SIM7600E"))
        response = await channel.command("ATI", match=lambda line: b": " in line)
        assert len(response.lines) == 2

    scenario(body)


def test_timeout_leaves_the_channel_usable():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CSQ")  # silence
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 9,9"))
        error = None
        try:
            await channel.command("AT+CSQ", timeout_ms=50)
        except Timeout as caught:
            error = caught
        assert error.timeout_ms == 50 and error.what == "AT+CSQ"
        assert (await channel.command("AT+CSQ")).lines == [b"+CSQ: 9,9"]

    scenario(body)


def test_late_answer_after_a_timeout_is_dropped_as_stray():
    async def body(fake, channel, urcs):
        fake.expect(b"AT")
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 1,1"))
        try:
            await channel.command("AT", timeout_ms=20)
        except Timeout:
            pass
        fake.push(b"\r\nOK\r\n")  # the answer to the abandoned AT, late
        await until(lambda: channel.stray == 1)
        assert (await channel.command("AT+CSQ")).lines == [b"+CSQ: 1,1"]

    scenario(body, (None,))


def test_a_late_answer_is_awaited_before_the_next_command_goes_out():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CIPRXGET=2,0,100")  # its answer comes too late
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 5,5"))
        try:
            await channel.command("AT+CIPRXGET=2,0,100", timeout_ms=20)
        except Timeout:
            pass
        task = asyncio.create_task(channel.command("AT+CSQ"))
        await asyncio.sleep(0.03)
        assert b"AT+CSQ" not in fake.written  # held back: a stale OK must not answer it
        fake.push(b"\r\n+CIPRXGET: 2,0,0,0\r\n\r\nOK\r\n")
        assert (await task).lines == [b"+CSQ: 5,5"]
        assert channel.stray == 1

    scenario(body, (None,))


def test_one_command_in_flight():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 1,0"))
        fake.expect(b"AT+CREG?", ok(b"+CREG: 0,1"))
        first, second = await asyncio.gather(channel.command("AT+CSQ"), channel.command("AT+CREG?"))
        assert first.lines == [b"+CSQ: 1,0"] and second.lines == [b"+CREG: 0,1"]
        assert fake.written == bytearray(b"AT+CSQ\rAT+CREG?\r")

    scenario(body)


def test_garbage_and_overlong_lines_never_wedge_it():
    async def body(fake, channel, urcs):
        fake.push(b"\xff\x00garbage>>\r\n" + b"#" * 2000 + b"\r\n")
        fake.expect(b"AT", ok())
        await channel.command("AT")
        assert channel.parser.dropped_lines == 1

    scenario(body)


def test_a_subscriber_that_raises_does_not_stop_the_reader():
    async def body(fake, channel, urcs):
        def broken(line, chunk):
            raise ValueError("bug")

        channel.subscribe((b"+CSQ",), broken)
        fake.push(framed(b"+CSQ: 1,1"))
        fake.expect(b"AT", ok())
        await channel.command("AT")
        assert channel.handler_errors == 1 and isinstance(channel.last_handler_error, ValueError)

    scenario(body)


def test_uart_gone_fails_the_command_and_every_later_one():
    async def body(fake, channel, urcs):
        fake.expect(b"AT")

        async def hang_up_soon():
            await asyncio.sleep(0.01)
            fake.hang_up()

        hang_up = asyncio.create_task(hang_up_soon())
        error = None
        try:
            await channel.command("AT", timeout_ms=2000)
        except ModemError as caught:
            error = caught
        await hang_up
        assert error is not None and not isinstance(error, AtError)
        assert channel.closed_reason is not None
        later = None
        try:
            await channel.command("AT")
        except ModemError as caught:
            later = caught
        assert "closed" in str(later)

    scenario(body, (None,))


def test_power_lost_fails_the_command_in_flight_at_once():
    async def body(fake, channel, urcs):
        fake.expect(b"AT+NETOPEN")  # the modem browned out: no answer will come

        async def status_falls():
            await asyncio.sleep(0.01)
            channel.power_lost()

        watcher = asyncio.create_task(status_falls())
        error = None
        try:
            await channel.command("AT+NETOPEN", timeout_ms=5000)
        except ModemError as caught:
            error = caught
        await watcher
        assert "lost power" in str(error) and channel.closed_reason == "modem lost power"

    scenario(body, (None,))


def test_close_is_idempotent_and_releases_everything():
    book = Ledger()

    async def main():
        fake = FakeModem()
        channel = channel_with(fake, book)
        channel.subscribe((b"+X",), lambda line, chunk: None)
        assert book.count(HANDLER, "AT") == 1 and book.count(TASK, "AT") == 1
        await channel.close()
        await channel.close()
        assert fake.closed

    run(main())
    assert len(book) == 0


def test_close_before_the_reader_ever_ran():
    book = Ledger()

    async def main():
        channel = AtChannel(FakeModem(), ledger=book)
        channel.start()
        await channel.close()

    run(main())
    assert len(book) == 0


def test_running_out_of_memory_while_opening_leaves_nothing_held():
    # a MemoryError while the channel or the driver is being made (a window in a
    # fragmented heap) must not leave the UART or the reader task in the ledger
    from cellmqtt import port
    from cellmqtt.modem import at
    from cellmqtt.modem.sim7600 import Sim7600

    def no_memory(*args):
        raise MemoryError("memory allocation failed")

    book = Ledger()
    fake = FakeModem()
    real_parser = at.AtParser
    at.AtParser = no_memory
    try:
        raises(MemoryError, AtChannel, fake, ledger=book)
    finally:
        at.AtParser = real_parser
    assert len(book) == 0, book.entries()

    async def main():
        opened = []

        async def open_uart(config):
            opened.append(FakeModem())
            return opened[-1]

        real_open, real_start = port.open_uart, Sim7600.start
        port.open_uart = open_uart
        Sim7600.start = no_memory
        try:
            try:
                await Sim7600.open({"name": "UART"}, ledger=book)
                raise AssertionError("the driver started with no memory")
            except MemoryError:
                pass
            at.AtParser = no_memory  # the channel cannot be made: the UART is closed
            try:
                await Sim7600.open({"name": "UART"}, ledger=book)
                raise AssertionError("the channel was made with no memory")
            except MemoryError:
                pass
        finally:
            port.open_uart, Sim7600.start, at.AtParser = real_open, real_start, real_parser
        assert len(book) == 0, book.entries()
        assert opened[0].closed and opened[1].closed

    run(main())
