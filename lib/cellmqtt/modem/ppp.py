"""PPP over the SIM7600: the data call (dial, data mode, escape, hang-up) and the PPP
link that runs a PPP stack over it and tracks the sockets opened through it.

DataCall states (a transition table; anything else is a StateError):
  idle     command mode, no call
  dialing  ATD*99# (or AT+CGDATA="PPP",1) sent, waiting for CONNECT
  data     CONNECT: the UART carries PPP; the AT channel refuses commands
  command  online command mode after +++ or a DTR drop: the call is up, AT works,
           ATO goes back to data, ATH hangs up
A NO CARRIER in data mode, or the modem's UART dying, ends the call from any state.

Leaving data mode (docs/modem.md, PPP): 1 s of silence, `+++`, 1 s of silence, OK;
then ATH. Where the board wires DTR and the modem runs AT&D1, a DTR ON->OFF edge does
the same in hardware; it is the fallback when the modem ignores +++. When neither
works, hang_up() raises ModemError and the caller powers the modem off, which ends
the call too.

PppLink: a fresh port PPP object per window (network.PPP on the board: an old one may
hold a leaked control block, micropython issue 11419), connect, an address within a
bound; sockets opened through open() are tracked and fail with LinkClosed once the
carrier is gone. down() closes in the order that avoids the known MicroPython faults
(issues 15157, 17079, PR 17656): sockets, then disconnect(), then active(False); the
escape and ATH come after it, from DataCall.hang_up().
"""

import asyncio

from .. import port
from .._const import const
from ..errors import AtError, LinkClosed, ModemError, StateError, Timeout
from ..ledger import PPP, SOCKET
from ..ledger import ledger as device_ledger
from .at_parser import text
from .sim7600 import apn_setting
from . import timeouts_tls_ppp  # noqa: F401  # loaded now, at boot, not inside a window's heap

IDLE = "idle"
DIALING = "dialing"
DATA = "data"
COMMAND = "command"

_TRANSITIONS = {
    IDLE: (DIALING,),
    DIALING: (DATA, IDLE),
    DATA: (COMMAND, IDLE),
    COMMAND: (DATA, IDLE),
}
# the results that end ATD and ATO (ITU V.250): CONNECT [<rate>] or a failure
_CALL_RESULTS = (b"CONNECT", b"NO CARRIER", b"BUSY", b"NO ANSWER", b"NO DIALTONE")
_NO_CARRIER = b"NO CARRIER"
_TAIL = const(9)  # len(b"NO CARRIER") - 1: kept across reads to match it when split
_POLL_MS = const(50)  # how often PPP negotiation and close are checked


def _no_carrier(command, result):
    # its module (errors_tls_ppp.py, ~2 KB on 64-bit) loads with the first call that
    # fails, not at boot, where the heap peaks
    from ..errors_tls_ppp import NoCarrier

    return NoCarrier(command, result)


def _call_result(line):
    for result in _CALL_RESULTS:
        if line.startswith(result):
            return True
    return False


class DataCall:
    def __init__(self, channel, ledger=None, dtr=None, owner="PPP"):
        """channel: the AtChannel; dtr: an output pin wired to the modem's DTR (high =
        DTR off), or None where the board has none."""
        self.channel = channel
        self._ledger = device_ledger if ledger is None else ledger
        self._dtr = dtr
        self._owner = owner
        self._fd = None
        self._tail = b""
        self._watchers: list = []
        self.state = IDLE
        self.rate = None  # the rate CONNECT reported, or None
        self.lost = None  # why the call ended without a hang-up (NO CARRIER, power)
        self.data_in = 0  # bytes the modem sent in data mode that the channel read

    def _move(self, state, action):
        if state not in _TRANSITIONS[self.state]:
            raise StateError("data call", self.state, action)
        self.state = state

    def watch(self, callback):
        """callback(reason) once the call ends without a hang-up (carrier lost)."""
        self._watchers.append(callback)

    def unwatch(self, callback):
        if callback in self._watchers:
            self._watchers.remove(callback)

    # dialling

    async def dial(self, apn=None, cid=1, cgdata=False):
        """AT+CGDCONT (when apn is given), AT&D1 (when DTR is wired), then ATD*99#
        (or AT+CGDATA="PPP",1) until CONNECT; returns the rate it reported (or None).
        NoCarrier for NO CARRIER/BUSY/NO ANSWER, AtError for ERROR, Timeout. After any
        error the call may still need hang_up() (a late CONNECT): callers always end
        with it."""
        self._move(DIALING, "dial")
        channel = self.channel
        self.lost = None
        if cgdata:
            command = 'AT+CGDATA="PPP",%d' % cid
        else:
            command = "ATD*99#" if cid == 1 else "ATD*99***%d#" % cid
        dialled = False
        try:
            if apn is not None:
                await channel.command("AT" + apn_setting(apn))
            if self._dtr is not None:
                await channel.command("AT&D1")  # DTR ON->OFF: back to commands, call kept
            dialled = True
            response = await channel.command(command, timeout_ms=channel.timeout("dial"),
                                             ends=self._on_result)
        except Timeout:
            if self.state == DIALING:
                if dialled:  # a CONNECT may still come: hang_up() escapes to be sure
                    self.state = DATA
                    self._acquire("unknown")
                else:
                    self.state = IDLE
            raise
        except BaseException:
            if self.state == DIALING:
                self.state = IDLE
            raise
        return self._connected(command, response.lines[-1])

    def _on_result(self, line):
        # runs in the channel's reader: data mode must start before the next byte
        if not _call_result(line):
            return False
        if line.startswith(b"CONNECT"):
            self._tail = b""
            self.state = DATA
            self._acquire(text(line))
            self.enter_data_mode()
        return True

    def _connected(self, command, result):
        if not result.startswith(b"CONNECT"):
            self.state = IDLE
            self._release()
            raise _no_carrier(command, text(result))
        if self.state != DATA:  # the carrier dropped right behind CONNECT
            raise _no_carrier(command, self.lost or "call lost")
        rate = result[len(b"CONNECT"):].strip()
        self.rate = int(rate) if rate.isdigit() else None
        return self.rate

    def _acquire(self, detail):
        if self._fd is None:
            self._fd = self._ledger.acquire(PPP, self._owner, "data call " + detail)

    def _release(self):
        fd, self._fd = self._fd, None
        if fd is not None:
            self._ledger.release(fd)

    # data mode

    def _on_data(self, data):
        # the channel's sink in data mode: only a carrier drop concerns us here
        self.data_in += len(data)
        seen = self._tail + data
        if _NO_CARRIER in seen:
            self.leave_data_mode()
            self.carrier_lost("NO CARRIER")
        else:
            self._tail = seen[-_TAIL:]

    def enter_data_mode(self, read=None):
        """The modem said CONNECT: every byte read goes to the call and the channel refuses
        commands. read=False (the default where the port's PPP stack reads the UART
        itself) pauses the channel's reader instead."""
        channel = self.channel
        channel.sink = self._on_data
        if read is None:
            read = not port.PPP_READS_UART
        if not read and channel.paused is None:
            channel.paused = asyncio.Event()

    def leave_data_mode(self):
        """Back to AT on the channel (after +++, a DTR drop or NO CARRIER), parsing from a
        clean slate."""
        channel = self.channel
        channel.sink = None
        channel.parser.reset()
        paused, channel.paused = channel.paused, None
        if paused is not None:
            paused.set()

    def carrier_lost(self, reason):
        """The call ended without us (NO CARRIER, modem power or UART gone)."""
        if self.state == IDLE:
            return
        self.state = IDLE
        self.lost = reason
        self._release()
        for callback in list(self._watchers):
            callback(reason)

    async def escape(self):
        """Data mode -> online command mode with +++ and the manual's guard times.
        Timeout when the modem does not answer OK (it ignored the escape)."""
        if self.state != DATA:
            raise StateError("data call", self.state, "escape")
        channel = self.channel
        guard = channel.timeout("guard")
        await port.hold_ms(guard)  # silence before; the modem's OK comes after the silence after
        if self.state != DATA:  # the carrier dropped meanwhile
            return
        self.leave_data_mode()
        try:
            await channel.command("+++", timeout_ms=guard + channel.timeout("escape"), ends=self._gone)
        except (Timeout, AtError):
            if self.state == DATA:
                self.enter_data_mode()
            raise
        if self.state == DATA:
            self._move(COMMAND, "escape")

    def _gone(self, line):
        # a NO CARRIER the modem sent while a PPP stack held the UART: no call to escape
        if not line.startswith(_NO_CARRIER):
            return False
        self.carrier_lost("NO CARRIER")
        return True

    async def drop_dtr(self):
        """The hardware way out of data mode: DTR off for "dtr" ms (AT&D1: back to
        commands, call kept), then AT must answer. ModemError without a DTR pin."""
        if self._dtr is None:
            raise ModemError("no DTR pin configured (pins.dtr)")
        channel = self.channel
        self._dtr.value(1)
        try:
            await port.hold_ms(channel.timeout("dtr"))
        finally:
            self._dtr.value(0)
        data = channel.sink is not None
        self.leave_data_mode()
        try:
            await channel.command("AT", timeout_ms=channel.timeout("escape"))
        except (Timeout, AtError):
            if data and self.state == DATA:
                self.enter_data_mode()
            raise
        if self.state == DATA:
            self._move(COMMAND, "drop DTR")

    async def resume(self):
        """Online command mode -> data mode again (ATO -> CONNECT)."""
        if self.state != COMMAND:
            raise StateError("data call", self.state, "resume data mode (ATO)")
        response = await self.channel.command("ATO", ends=self._on_result)
        return self._connected("ATO", response.lines[-1])

    async def hang_up(self):
        """End the call on every path: out of data mode (+++, else DTR), then ATH.
        Idempotent. ModemError when the modem stays in data mode: power it off (the
        AT channel still refuses commands then, so AT+CPOF is never sent as data)."""
        try:
            if self.state == IDLE:
                return
            if self.state == DATA:
                try:
                    await self.escape()
                except (Timeout, AtError) as error:
                    if self._dtr is None:
                        raise ModemError("modem stays in data mode (+++ not answered: %s) and "
                                         "no DTR pin: power it off" % error)
                    await self.drop_dtr()
            if self.state == COMMAND:
                await self.channel.command("ATH", ends=_call_result)
        finally:
            if self.channel.sink is None:
                self.state = IDLE
            self._release()  # a modem stuck in data mode is powered off next


class PppLink:
    """A PPP stack over a DataCall in data mode, and the sockets opened through it."""

    def __init__(self, call, ledger=None, owner="PPP"):
        self.call = call
        self._ledger = device_ledger if ledger is None else ledger
        self._owner = owner
        self._ppp = None
        self._fd = None
        self._streams: list = []
        self.address = None

    async def up(self, timeout_ms=None):
        """A fresh PPP object, connect(), and an address within timeout_ms ("ppp_up");
        returns the address. LinkClosed if the carrier goes meanwhile. Callers end
        with down() on every path."""
        call = self.call
        if call.state != DATA or self._ppp is not None:
            raise StateError("PPP link", call.state if self._ppp is None else "up", "bring PPP up")
        bound = call.channel.timeout("ppp_up") if timeout_ms is None else timeout_ms
        self._fd = self._ledger.acquire(PPP, self._owner, "PPP stack")
        call.watch(self._carrier_lost)
        ppp = self._ppp = port.new_ppp(call)
        ppp.connect()
        started = port.ticks_ms()
        while not ppp.isconnected():
            if call.state != DATA:
                raise LinkClosed("carrier lost: %s" % call.lost)
            if port.ticks_diff(port.ticks_ms(), started) >= bound:
                raise Timeout("PPP address", bound)
            await port.asleep_ms(_POLL_MS)
        self.address = ppp.ipconfig("addr4")[0]
        return self.address

    async def open(self, opener, *args, owner="PPP"):
        """A Stream from opener(*args) (port.open_tcp, port.open_tls) through the link,
        tracked: it fails with LinkClosed once the carrier is gone."""
        if self._ppp is None or self.call.state != DATA:
            raise LinkClosed("PPP link is down" if self.call.lost is None else
                             "carrier lost: %s" % self.call.lost)
        stream = PppStream(self, await opener(*args))
        stream.fd = self._ledger.acquire(SOCKET, owner, "PPP %s" % (args[0] if args else ""))
        self._streams.append(stream)
        return stream

    async def open_tcp(self, host, port_number, owner="PPP"):
        return await self.open(port.open_tcp, "%s:%d" % (host, port_number), owner=owner)

    def forget(self, stream):
        if stream in self._streams:
            self._streams.remove(stream)
        fd, stream.fd = stream.fd, None
        if fd is not None:
            self._ledger.release(fd)

    def _carrier_lost(self, reason):
        for stream in self._streams:
            stream.fail("carrier lost: %s" % reason)

    async def down(self):
        """Sockets, then PPP disconnect() and active(False), each bounded. Idempotent."""
        while self._streams:
            await self._streams[0].close()
        self.call.unwatch(self._carrier_lost)
        ppp, self._ppp = self._ppp, None
        try:
            if ppp is not None:
                ppp.disconnect()
                bound = self.call.channel.timeout("ppp_down")
                started = port.ticks_ms()
                while ppp.isconnected() and port.ticks_diff(port.ticks_ms(), started) < bound:
                    await port.asleep_ms(_POLL_MS)
                ppp.active(False)
        finally:
            fd, self._fd = self._fd, None
            if fd is not None:
                self._ledger.release(fd)
            self.address = None


class PppStream:
    """A Stream through a PppLink: errors become LinkClosed, a lost carrier fails it."""

    def __init__(self, link, inner):
        self._link = link
        self._inner = inner
        self._failed = None
        self._reader = None  # the task waiting in read()
        self.fd = None

    def fail(self, reason):
        self._failed = reason
        # a pending read ends now, not at its own bound: no socket read wakes up
        # because its network went away (closing it does not wake it under MicroPython)
        if self._reader is not None:
            self._reader.cancel()

    async def read(self, max_bytes):
        if self._failed is not None:
            raise LinkClosed(self._failed)
        self._reader = asyncio.current_task()
        try:
            data = await self._inner.read(max_bytes)
        except OSError as error:
            raise LinkClosed(self._failed or "socket error: %s" % error)
        except asyncio.CancelledError as error:
            if self._failed is None:
                raise error
            raise LinkClosed(self._failed)
        finally:
            self._reader = None
        if self._failed is not None:
            raise LinkClosed(self._failed)
        return data

    async def write(self, data):
        if self._failed is not None:
            raise LinkClosed(self._failed)
        try:
            await self._inner.write(data)
        except OSError as error:
            raise LinkClosed(self._failed or "socket error: %s" % error)

    async def close(self):
        try:
            await self._inner.close()
        except OSError:
            pass
        finally:
            self._link.forget(self)
