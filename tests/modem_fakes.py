# A scripted fake SIM7600 for unit tests on both runtimes: a Stream that plays the
# modem's side of the UART. The script is a list of expectations, met in order: the
# host must write exactly this (a command and its CR, or the raw bytes after a
# prompt), and the fake then sends that reply. Replies come out in pieces of `chunk`
# bytes (None: all that is queued at once; 1: byte by byte; a tuple: those sizes in
# turn), with a yield to the event loop after each piece, so every interleaving of
# reader and caller is tried.
import asyncio

from cellmqtt.ledger import Ledger
from cellmqtt.modem.at import AtChannel
from cellmqtt.modem.sim7600 import Sim7600
from support import run

# AT+CTZU=1 goes once per MCU boot: the scripts start after it (tests/test_modem_time.py sends it)
Sim7600.zone_auto = True

CHUNKS = (None, 1, 7)  # whole, byte by byte, odd pieces that split lines anywhere
FAST = {  # generous bounds for answers that do come; a test that waits for one to run
    # out sets its own short value (channel.timeouts[name] = ...)
    "default": 2000, "AT": 2000, "E0": 2000, "+CMEE": 2000, "+CPIN": 2000, "+NETOPEN": 2000,
    "+NETCLOSE": 2000, "+CIPOPEN": 2000, "+CIPSEND": 2000, "+CIPCLOSE": 2000, "probe": 30,
    "boot": 2000, "sim": 2000, "register": 2000, "requery": 50, "read": 2000, "late": 200,
    "+CCHSTART": 2000, "+CCHSTOP": 2000, "+CCHOPEN": 2000, "+CCHSEND": 2000, "+CCHRECV": 2000,
    "+CCHCLOSE": 2000, "+CCERTDOWN": 2000,
}


def ok(*lines):
    """The bytes of a response: each information line framed, then OK."""
    return b"".join(b"\r\n" + line + b"\r\n" for line in lines) + b"\r\nOK\r\n"


def framed(*lines):
    """Lines framed as the modem frames URCs and finals."""
    return b"".join(b"\r\n" + line + b"\r\n" for line in lines)


class FakeModem:
    def __init__(self, chunk=None, record=True):
        self.chunk = chunk
        self.record = record  # keep `written` (leak tests turn it off: it grows)
        self.script = []
        self.written = bytearray()  # everything the host wrote
        self.unexpected = []  # host bytes that met no expectation
        self.closed = False
        self.reads = 0
        self._rx = bytearray()
        self._pending = bytearray()
        self._event = asyncio.Event()

    # the script

    def expect(self, command, reply=b""):
        """The host writes command + CR next; reply (bytes, or a function of nothing
        giving bytes) is sent back."""
        self.script.append((command + b"\r", reply))
        return self

    def expect_data(self, data, reply=b""):
        """The host writes these raw bytes next (after a `>` prompt)."""
        self.script.append((bytes(data), reply))
        return self

    def push(self, data):
        """Unsolicited bytes from the modem, sent now."""
        self._rx.extend(data)
        self._event.set()

    def hang_up(self):
        """The UART goes away: reads return b"" from now on."""
        self.closed = True
        self._event.set()

    def done(self):
        return not self.script and not self.unexpected and not self._pending

    def queued(self):
        """Bytes sent but not yet read by the host."""
        return len(self._rx)

    def leftover(self):
        return [expected for expected, _ in self.script], self.unexpected, bytes(self._pending)

    # the Stream side, as the host sees it

    async def read(self, max_bytes):
        while not self._rx:
            if self.closed:
                return b""
            self._event.clear()
            await self._event.wait()
        n = min(max_bytes, len(self._rx))
        chunk = self.chunk
        if type(chunk) is tuple:
            chunk = chunk[self.reads % len(chunk)]
        self.reads += 1
        if chunk:
            n = min(n, chunk)
        data = bytes(self._rx[:n])
        self._rx = self._rx[n:]
        await asyncio.sleep(0)
        return data

    async def write(self, data):
        if self.closed:
            raise OSError(9, "fake UART closed")
        if self.record:
            self.written.extend(data)
        self._pending.extend(data)
        self._match()

    async def close(self):
        self.hang_up()

    def _match(self):
        while self._pending:
            if not self.script:
                self.unexpected.append(bytes(self._pending))
                self._pending = bytearray()
                return
            expected, reply = self.script[0]
            size = min(len(expected), len(self._pending))
            if self._pending[:size] != expected[:size]:
                self.unexpected.append(bytes(self._pending))
                self._pending = bytearray()
                return
            if size < len(expected):
                return
            self._pending = self._pending[size:]
            self.script.pop(0)
            self.push(reply() if callable(reply) else reply)


def channel_with(fake, book=None, timeouts=None):
    """A started AtChannel on the fake, with its own ledger."""
    channel = AtChannel(fake, timeouts=FAST if timeouts is None else timeouts,
                        ledger=Ledger() if book is None else book)
    channel.start()
    return channel


def links(driver):
    """The links the driver holds, by number."""
    return [link for link in driver.slots if link is not None]


def driver_with(fake, book):
    """A started Sim7600 on the fake, owning its channel."""
    driver = Sim7600(AtChannel(fake, timeouts=FAST, ledger=book), ledger=book, owns_channel=True, poll_ms=10)
    driver.start()
    return driver


def drive(body, chunks=CHUNKS, network=True):
    """Run body(fake, driver) for each way of splitting the modem's bytes, with the
    network already open when asked; afterwards the script is used up and the ledger
    is empty again."""
    for chunk in chunks:
        book = Ledger()

        async def main():
            fake = FakeModem(chunk)
            driver = driver_with(fake, book)
            try:
                if network:
                    script_net_open(fake)
                    await driver.net_open()
                await body(fake, driver)
                assert fake.done(), fake.leftover()
            finally:
                await driver.close()

        run(main())
        assert len(book) == 0, book.entries()


# conversations the driver has, for tests to put into a script

def attach_settings(apn=b"iot"):
    """What attach() adds to the settings line: the APN and manual receive."""
    return b';+CGDCONT=1,"IP","%s";+CIPRXGET=1' % apn


def script_settings(fake, reply, settings=b""):
    """The settings line (Sim7600._settings_line, AT+CTZU=1 sent already): echo off,
    reports on, `settings`, both registration queries."""
    fake.expect(b"ATE0+CEREG=1" + settings + b";+CEREG?;+CGREG?", reply)


def script_registered(fake, answer=b"+CEREG: 1,1", settings=b""):
    """The settings line, its first query saying registered."""
    script_settings(fake, ok(answer, b"+CGREG: 0,2"), settings)


def script_net_open(fake):
    fake.expect(b"AT+NETOPEN", ok() + framed(b"+NETOPEN: 0"))


def script_open(fake, number, host=b"127.0.0.1", port=1883, err=0):
    command = b'AT+CIPOPEN=%d,"TCP","%s",%d' % (number, host, port)
    fake.expect(command, ok() + framed(b"+CIPOPEN: %d,%d" % (number, err)))


def script_send(fake, number, data, confirmed=None):
    confirmed = len(data) if confirmed is None else confirmed
    fake.expect(b"AT+CIPSEND=%d,%d" % (number, len(data)), b"\r\n>")
    fake.expect_data(data, ok() + framed(b"+CIPSEND: %d,%d,%d" % (number, len(data), confirmed)))


def rxget_reply(number, data, rest=0):
    """The answer to AT+CIPRXGET=2: header, exactly len(data) raw bytes, OK."""
    header = b"+CIPRXGET: 2,%d,%d,%d" % (number, len(data), rest)
    return b"\r\n" + header + b"\r\n" + data + b"\r\nOK\r\n"


def script_receive(fake, number, data, size=1500, rest=0):
    fake.expect(b"AT+CIPRXGET=2,%d,%d" % (number, size), rxget_reply(number, data, rest))


def script_close(fake, number):
    fake.expect(b"AT+CIPCLOSE=%d" % number, ok() + framed(b"+CIPCLOSE: %d,0" % number))


def script_net_close(fake):
    fake.expect(b"AT+NETCLOSE", ok() + framed(b"+NETCLOSE: 0"))

