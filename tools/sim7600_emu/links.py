"""The modem's ten links, each bridged to a real TCP connection on the loopback.

A link is in the table from AT+CIPOPEN's OK until it is gone: connecting, open, closing
(AT+CIPCLOSE answered, +CIPCLOSE: not yet). Received bytes go out at once in push mode,
or into the link's buffer in manual mode (AT+CIPRXGET=1); a buffer outlives its link's
close so the last bytes a server sent can still be read, until the number is reused.
"""

import asyncio
import ipaddress
import logging
import socket
import struct

from .model import FINAL, LATENCY_MS, LINKS, MAX_CONNECT_MS, ON, RX_CHUNK, RX_LIMIT

log = logging.getLogger("sim7600_emu")
ERR_NETWORK, ERR_TIMEOUT, ERR_DNS = 1, 10, 11  # ATM ch. 11 <err> codes


def loopback(host):
    """The loopback address to connect to for `host`, or None: nothing else is bridged."""
    if host.lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(address) if address.is_loopback else None


class Link:
    def __init__(self, number, host, port, answer=False):
        self.number = number
        self.host = host
        self.port = port
        self.answer = answer  # AT+CIPOPEN's OK is owed after the URC (quirk cipopen_urc_first)
        self.address = None
        self.state = "connecting"
        self.writer = None
        self.task = None
        self.room = asyncio.Event()  # set when a full receive buffer was read from


class LinkTable:
    def __init__(self, modem):
        self.modem = modem
        self.links = {}
        self.buffers = [bytearray() for _ in range(LINKS)]
        self.notified = [False] * LINKS  # +CIPRXGET: 1 sent, buffer not yet read empty
        self.tasks = set()

    # -- the table as AT commands see it ------------------------------------------------
    def numbers(self):
        return sorted(self.links)

    def busy(self, number):
        return number in self.links

    def is_open(self, number):
        link = self.links.get(number)
        return link is not None and link.state == "open"

    def closable(self, number):
        link = self.links.get(number)
        return link is not None and link.state != "closing"

    def table_lines(self):
        """AT+CIPOPEN?: ten lines, the modem's own socket table."""
        lines = []
        for number in range(LINKS):
            link = self.links.get(number)
            if link is None:
                lines.append("+CIPOPEN: %d" % number)
            else:
                lines.append('+CIPOPEN: %d,"TCP","%s",%d,-1' % (number, link.host, link.port))
        return lines

    # -- opening and closing -------------------------------------------------------------
    def open(self, number, host, port, answer=False):
        self.buffers[number] = bytearray()
        self.notified[number] = False
        link = Link(number, host, port, answer)
        self.links[number] = link
        link.task = asyncio.get_running_loop().create_task(self._run(link))
        self.tasks.add(link.task)
        link.task.add_done_callback(self.tasks.discard)

    def close(self, number):
        """AT+CIPCLOSE: FIN to the remote now, +CIPCLOSE: <l>,0 after the latency."""
        link = self.links[number]
        link.state = "closing"
        self._hang_up(link, abort=False)
        self.modem.after(LATENCY_MS["cipclose"], self._closed, link)

    def _closed(self, link):
        if self.links.get(link.number) is link:
            del self.links[link.number]
            self.modem.urc(b"+CIPCLOSE: %d,0" % link.number)
            self._left()

    def fail(self, number, reason):
        """The remote closed (reason 1) or a send timed out (2): +IPCLOSE: <l>,<reason>."""
        link = self.links.get(number)
        if link is None or link.state != "open":
            raise ValueError("link %d is not open" % number)
        del self.links[number]
        self._hang_up(link, abort=reason != 1)
        self.modem.urc(b"+IPCLOSE: %d,%d" % (number, reason))
        self._left()

    def _left(self):
        """A link is gone: with the quirk network_closed, the last one takes the network."""
        if not self.links and self.modem.quirk("network_closed"):
            self.modem.lose_network()

    def close_all(self):
        """AT+NETCLOSE: every link closed politely, buffers emptied."""
        self._clear(abort=False)

    def drop_all(self):
        """Power or network lost: every connection reset, buffers emptied."""
        self._clear(abort=True)

    def _clear(self, abort):
        for link in self.links.values():
            self._hang_up(link, abort)
        self.links.clear()
        for number in range(LINKS):
            self.buffers[number] = bytearray()
            self.notified[number] = False

    def _hang_up(self, link, abort):
        hang_up(link, abort)

    async def wait_closed(self):
        await asyncio.gather(*list(self.tasks), return_exceptions=True)

    # -- data ---------------------------------------------------------------------------
    def write(self, number, data):
        self.links[number].writer.write(data)

    def read(self, number, max_bytes):
        """AT+CIPRXGET=2: (data, rest_len); reading the buffer empty re-arms the URC."""
        buffer = self.buffers[number]
        data = bytes(buffer[:max_bytes])
        del buffer[:max_bytes]
        if not buffer:
            self.notified[number] = False
        link = self.links.get(number)
        if link is not None:
            link.room.set()
        return data, len(buffer)

    def pending(self, number):
        return len(self.buffers[number])

    def push_buffered(self):
        """Leaving manual mode: what waits in the buffers goes out in push form."""
        for number in range(LINKS):
            data = bytes(self.buffers[number])
            self.buffers[number] = bytearray()
            self.notified[number] = False
            link = self.links.get(number)
            if link is not None:
                if data:
                    self._push(link, data)
                link.room.set()

    async def _run(self, link):
        modem = self.modem
        number = link.number
        error = 0
        delay = modem.clock.seconds(LATENCY_MS["cipopen"])
        if delay:
            await asyncio.sleep(delay)
        link.address = loopback(link.host)
        if link.address is None:
            log.warning("link %d: %s is not a loopback address; refused", number, link.host)
            error = ERR_NETWORK if is_ip(link.host) else ERR_DNS
        else:
            timeout_s = min(modem.ciptimeout[1], MAX_CONNECT_MS) / 1000.0
            try:
                reader, link.writer = await asyncio.wait_for(
                    asyncio.open_connection(link.address, link.port), timeout_s)
            except TimeoutError:
                error = ERR_TIMEOUT
            except OSError:
                error = ERR_NETWORK
        if error:
            if self.links.get(number) is link:
                del self.links[number]
                modem.urc(b"+CIPOPEN: %d,%d" % (number, error))
                self._answer(link)
            return
        link.state = "open"
        modem.urc(b"+CIPOPEN: %d,0" % number)
        self._answer(link)
        modem.link_opened()
        await self._pump(link, reader)

    def _answer(self, link):
        if link.answer:
            link.answer = False
            self.modem.respond(self.modem.framed(b"OK", FINAL))

    async def _pump(self, link, reader):
        number = link.number
        try:
            while True:
                room = RX_LIMIT - len(self.buffers[number]) if self.modem.rx_manual else RX_CHUNK
                if room <= 0:
                    link.room.clear()
                    await link.room.wait()
                    continue
                data = await reader.read(min(RX_CHUNK, room))
                if not data:
                    break
                self._arrived(link, data)
        except OSError:
            pass  # reset by the remote: the same as a close
        if self.links.get(number) is link and link.state == "open":
            del self.links[number]
            link.writer.close()
            self.modem.urc(b"+IPCLOSE: %d,1" % number)
            self._left()

    def _arrived(self, link, data):
        modem = self.modem
        if modem.state != ON or link.state != "open":
            return  # a modem that is shutting down loses what arrives
        number = link.number
        if not modem.rx_manual:
            self._push(link, data)
            return
        self.buffers[number] += data
        if not self.notified[number]:
            self.notified[number] = True
            modem.urc(b"+CIPRXGET: 1,%d" % number)

    def _push(self, link, data):
        """Push mode: RECV FROM (AT+CIPSRIP) and +IPD (AT+CIPHEAD), or +RECEIVE when
        AT+CIPCCFG set HeaderType=1; then the bytes themselves."""
        modem = self.modem
        if modem.ccfg[4] == 1:
            head = b"\r\n+RECEIVE,%d,%d\r\n" % (link.number, len(data))
        else:
            head = b""
            if modem.srip:
                head += b"\r\nRECV FROM:%s:%d" % (link.address.encode(), link.port)
            if modem.iphead:
                head += b"\r\n+IPD%d" % len(data)
            if head:
                head += b"\r\n"
        modem.urc_raw(head + data)


def hang_up(link, abort):
    """Stop a bridged connection's task and close it: politely (FIN) or, when abort,
    with a reset (RST) so the remote learns the modem vanished."""
    if link.task is not None and link.task is not asyncio.current_task():
        link.task.cancel()
    if link.writer is not None:
        if abort:
            sock = link.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            link.writer.transport.abort()
        else:
            link.writer.close()


def is_ip(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
