# The data call and the PPP link against a scripted modem: every dial and hang-up
# outcome (CONNECT, NO CARRIER, ERROR, timeout, escape answered or ignored with the DTR
# and power-off fallbacks, ATO), AT refused in data mode, a carrier that drops, and the
# ledger back at its baseline after each.
import asyncio

from cellmqtt import port
from cellmqtt.errors import AtError, LinkClosed, ModemError, NoCarrier, StateError, Timeout
from cellmqtt.ledger import PPP, SOCKET, Ledger
from cellmqtt.modem.ppp import COMMAND, DATA, IDLE, DataCall, PppLink
from cellmqtt.port import _pc
from modem_fakes import CHUNKS, FakeModem, driver_with, framed, ok
from support import MICROPYTHON, caught, retained_bytes, run

QUICK = {"guard": 20, "escape": 200, "dtr": 5, "dial": 2000, "ppp_up": 500, "ppp_down": 200}
CONNECT = framed(b"CONNECT 115200")
APN = b'AT+CGDCONT=1,"IP","internet"'


class FakePin:
    def __init__(self):
        self.levels = [0]

    def value(self, level=None):
        if level is None:
            return self.levels[-1]
        self.levels.append(level)


def each_way(body, dtr=False):
    """body(fake, call, book) for each way of splitting the modem's bytes; then the
    script is used up and the ledger empty."""
    for chunk in CHUNKS:
        book = Ledger()

        async def main():
            fake = FakeModem(chunk)
            driver = driver_with(fake, book)
            driver.channel.timeouts.update(QUICK)
            call = driver.call = DataCall(driver.channel, ledger=book, dtr=FakePin() if dtr else None)
            book.mark_baseline()
            try:
                await body(fake, call, book)
                assert fake.done(), fake.leftover()
            finally:
                await driver.close()

        run(main())
        assert len(book) == 0, book.entries()


def script_dial(fake, reply=CONNECT, dtr=False):
    fake.expect(APN, ok())
    if dtr:
        fake.expect(b"AT&D1", ok())
    fake.expect(b"ATD*99#", reply)


def test_dial_connects_and_hang_up_escapes_then_ath():
    async def body(fake, call, book):
        script_dial(fake, CONNECT + b"~\xff\x7d\x23")  # PPP bytes right behind CONNECT
        assert await call.dial("internet") == 115200
        assert call.state == DATA and call.channel.sink is not None
        assert book.count(PPP) == 1
        for _ in range(40):  # in pieces, the rest comes after dial() returned
            await asyncio.sleep(0)
        assert call.data_in == 4  # went to the data-mode owner, not the AT parser
        fake.expect_data(b"+++", ok())
        fake.expect(b"ATH", ok())
        await call.hang_up()
        assert call.state == IDLE and call.channel.sink is None and book.at_baseline()
        await call.hang_up()  # idempotent

    each_way(body)


def test_at_is_refused_in_data_mode():
    async def body(fake, call, book):
        script_dial(fake)
        await call.dial("internet")
        error = await caught(call.channel.command("AT+CSQ"), StateError)
        assert error.state == "in data mode"
        assert bytes(fake.written).endswith(b"ATD*99#\r")  # nothing went out
        fake.expect_data(b"+++", ok())
        fake.expect(b"AT+CSQ", ok(b"+CSQ: 21,99"))  # online command mode: AT works
        fake.expect(b"ATH", ok())
        await call.escape()
        assert call.state == COMMAND
        await call.channel.command("AT+CSQ")
        await call.hang_up()

    each_way(body)


def test_dial_failures_are_typed():
    async def body(fake, call, book):
        for result in (b"NO CARRIER", b"BUSY", b"NO ANSWER"):
            script_dial(fake, framed(result))
            error = await caught(call.dial("internet"), NoCarrier)
            assert error.result == result.decode() and call.state == IDLE
            assert call.channel.sink is None and book.at_baseline()
        script_dial(fake, framed(b"ERROR"))
        await caught(call.dial("internet"), AtError)
        assert call.state == IDLE and book.at_baseline()
        await call.hang_up()  # nothing to hang up

    each_way(body)


def test_carrier_gone_right_behind_connect():
    async def body(fake, call, book):
        script_dial(fake, CONNECT + framed(b"NO CARRIER"))
        try:  # read in one piece, dial() sees the call gone; in pieces, just after
            await call.dial("internet")
        except NoCarrier as error:
            assert error.result == "NO CARRIER"
        for _ in range(60):
            await asyncio.sleep(0)
        assert call.state == IDLE and call.lost == "NO CARRIER"
        assert call.channel.sink is None and book.at_baseline()
        await call.hang_up()

    each_way(body)


def test_cgdata_and_another_context():
    async def body(fake, call, book):
        fake.expect(b'AT+CGDATA="PPP",2', CONNECT)
        await call.dial(cid=2, cgdata=True)
        fake.expect_data(b"+++", ok())
        fake.expect(b"ATH", ok())
        await call.hang_up()
        fake.expect(b"ATD*99***3#", framed(b"NO CARRIER"))
        await caught(call.dial(cid=3), NoCarrier)

    each_way(body)


def test_dial_timeout_then_an_ignored_escape_means_power_off():
    async def body(fake, call, book):
        call.channel.timeouts["dial"] = 60
        script_dial(fake, b"")  # no answer at all
        await caught(call.dial("internet"), Timeout)
        assert book.count(PPP) == 1  # a late CONNECT may have made a call: held until hang-up
        fake.expect_data(b"+++")  # not answered
        error = await caught(call.hang_up(), ModemError)
        assert "power it off" in str(error)
        assert book.at_baseline()
        # the channel assumes the worst: AT+CPOF would be data now, so it is refused
        await caught(call.channel.command("AT+CPOF"), StateError)

    each_way(body)


def test_ignored_escape_falls_back_to_dtr():
    async def body(fake, call, book):
        script_dial(fake, dtr=True)
        await call.dial("internet")
        fake.expect_data(b"+++")  # ignored
        fake.expect(b"AT", ok())  # after the DTR edge
        fake.expect(b"ATH", ok())
        await call.hang_up()
        assert call._dtr.levels == [0, 1, 0]  # OFF (high), then ON again
        assert call.state == IDLE and book.at_baseline()

    each_way(body, dtr=True)


def test_dtr_ignored_too_is_an_error():
    async def body(fake, call, book):
        script_dial(fake, dtr=True)
        await call.dial("internet")
        fake.expect_data(b"+++")
        fake.expect(b"AT")
        await caught(call.hang_up(), Timeout)
        assert call.channel.sink is not None and book.at_baseline()

    each_way(body, dtr=True)


def test_ato_returns_to_data_mode():
    async def body(fake, call, book):
        script_dial(fake)
        await call.dial("internet")
        fake.expect_data(b"+++", ok())
        await call.escape()
        error = await caught(call.escape(), StateError)
        assert error.state == COMMAND
        fake.expect(b"ATO", CONNECT)
        assert await call.resume() == 115200
        assert call.state == DATA and call.channel.sink is not None and book.count(PPP) == 1
        fake.expect_data(b"+++", ok())
        await call.escape()
        fake.expect(b"ATO", framed(b"NO CARRIER"))  # the call went meanwhile
        await caught(call.resume(), NoCarrier)
        assert call.state == IDLE and book.at_baseline()

    each_way(body)


def test_carrier_drop_in_data_mode():
    async def body(fake, call, book):
        seen = []
        call.watch(seen.append)
        script_dial(fake)
        await call.dial("internet")
        fake.push(b"\x7e\xff" + framed(b"NO CARRIER"))
        for _ in range(40):
            if call.state == IDLE:
                break
            await asyncio.sleep(0)
        assert call.state == IDLE and call.lost == "NO CARRIER" and seen == ["NO CARRIER"]
        assert call.channel.sink is None and book.at_baseline()
        fake.expect(b"AT", ok())
        await call.channel.command("AT")  # command mode again
        await call.hang_up()  # nothing left to hang up

    each_way(body)


def test_escape_meets_a_carrier_already_gone():
    async def body(fake, call, book):
        script_dial(fake)
        await call.dial("internet")
        call.leave_data_mode()  # as on the board: the PPP stack read the NO CARRIER
        call.enter_data_mode(False)
        fake.expect_data(b"+++", framed(b"NO CARRIER"))
        await call.hang_up()  # no ATH: nothing left to hang up
        assert call.state == IDLE and call.lost == "NO CARRIER" and book.at_baseline()

    each_way(body)


def test_power_loss_in_data_mode_ends_the_call():
    async def body(fake, call, book):
        script_dial(fake)
        await call.dial("internet")
        call.channel.power_lost()
        assert call.state == IDLE and "lost power" in call.lost and book.at_baseline()
        await call.hang_up()

    each_way(body)


class FakeSocket:
    """An open socket whose read waits until it is closed: a lost network wakes nothing."""

    def __init__(self):
        self.event = asyncio.Event()
        self.closed = False

    async def read(self, max_bytes):
        await self.event.wait()
        return b""

    async def write(self, data):
        pass

    async def close(self):
        self.closed = True
        self.event.set()


def _no_control(body):
    saved = _pc._settings["control"]
    _pc._settings["control"] = None  # the stand-in trusts the call's own state
    try:
        each_way(body)
    finally:
        _pc._settings["control"] = saved


def test_ppp_link_up_sockets_and_down_in_order():
    async def body(fake, call, book):
        script_dial(fake)
        await call.dial("internet")
        link = PppLink(call, ledger=book)
        assert await link.up() == _pc.PPP_ADDRESS
        sockets = []

        async def opener(address):
            sockets.append(FakeSocket())
            return sockets[-1]

        stream = await link.open(opener, "127.0.0.1:1883", owner="MQTT")
        assert book.count(SOCKET, "MQTT") == 1 and book.count(PPP) == 2
        await stream.write(b"\x10")
        await link.down()  # closes the socket first
        assert sockets[0].closed and book.count(PPP) == 1  # the call is still up
        await caught(link.open(opener, "127.0.0.1:1883"), LinkClosed)
        fake.expect_data(b"+++", ok())
        fake.expect(b"ATH", ok())
        await call.hang_up()

    _no_control(body)


def test_ppp_link_fails_its_sockets_when_the_carrier_drops():
    async def body(fake, call, book):
        script_dial(fake)
        await call.dial("internet")
        link = PppLink(call, ledger=book)
        await link.up()
        socket = FakeSocket()

        async def opener(address):
            return socket

        stream = await link.open(opener, "127.0.0.1:1883")
        reading = asyncio.create_task(stream.read(100))
        await asyncio.sleep(0)
        fake.push(framed(b"NO CARRIER"))
        error = await caught(reading, LinkClosed)
        assert "NO CARRIER" in error.reason and not socket.closed
        await caught(stream.write(b"x"), LinkClosed)
        await caught(link.open(opener, "127.0.0.1:1883"), LinkClosed)
        await link.down()
        await call.hang_up()  # the call is already over: nothing is sent

    _no_control(body)


class SilentPpp:
    """A PPP stack that never gets an address."""

    def __init__(self, call):
        self.calls = []

    def connect(self):
        self.calls.append("connect")

    def isconnected(self):
        return False

    def disconnect(self):
        self.calls.append("disconnect")

    def active(self, *state):
        self.calls.append(("active",) + state)


def test_ppp_link_up_is_bounded_and_needs_a_call():
    made = []

    def new_ppp(call):
        made.append(SilentPpp(call))
        return made[-1]

    async def body(fake, call, book):
        link = PppLink(call, ledger=book)
        await caught(link.up(), StateError)  # no call yet
        script_dial(fake)
        await call.dial("internet")
        error = await caught(link.up(), Timeout)
        assert error.what == "PPP address"
        await link.down()
        assert made[-1].calls == ["connect", "disconnect", ("active", False)]
        fake.push(framed(b"NO CARRIER"))
        for _ in range(40):
            await asyncio.sleep(0)
        await caught(link.up(), StateError)  # the call is gone
        assert book.at_baseline()

    saved = port.new_ppp
    port.new_ppp = new_ppp
    try:
        each_way(body)
    finally:
        port.new_ppp = saved
    assert len(made) == 3


def test_dial_ppp_hang_up_cycles_retain_nothing():
    # whole sessions from the top level, so the gc sees a shallow stack (exact under MicroPython)
    book = Ledger()
    saved = _pc._settings["control"]

    async def opener(address):
        return FakeSocket()

    def session():
        async def main():
            fake = FakeModem(record=False)
            driver = driver_with(fake, book)
            driver.channel.timeouts.update(QUICK)
            driver.channel.timeouts["guard"] = 1
            try:
                for _ in range(5):
                    call = driver.call = DataCall(driver.channel, ledger=book)
                    script_dial(fake)
                    await call.dial("internet")
                    link = PppLink(call, ledger=book)
                    await link.up()
                    stream = await link.open(opener, "127.0.0.1:1883")
                    await stream.write(b"\xc0\x00")
                    await link.down()
                    fake.expect_data(b"+++", ok())
                    fake.expect(b"ATH", ok())
                    await call.hang_up()
                    assert book.count(PPP) == 0 and book.count(SOCKET) == 0
                assert fake.done(), fake.leftover()
            finally:
                await driver.close()

        run(main())
        assert len(book) == 0, book.entries()

    _pc._settings["control"] = None
    try:
        retained = retained_bytes(session, 20 if MICROPYTHON else 3)
    finally:
        _pc._settings["control"] = saved
    if MICROPYTHON:
        assert retained == 0, retained
