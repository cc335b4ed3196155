"""The modem's UART on the PC: a TCP port (one host at a time) or a pseudo-terminal.

TCP: a second connection waits, unread, until the first one closes (as a second cable
would wait for the first to be unplugged); its bytes are served once it has the line.
A dropped connection changes nothing in the modem. Output with no host connected is
lost, as on a real serial line.
"""

import asyncio
import os
import tty


def split_address(address):
    """"host:port" -> (host, port); ValueError when it is not that."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("expected HOST:PORT, got %r" % address)
    return host.strip("[]"), int(port)


def join_address(sockname):
    return "%s:%d" % (sockname[0], sockname[1])


class TcpServer:
    """A TCP server whose connection tasks are tracked, so stop() ends them all;
    subclasses handle one connection in session(reader, writer)."""

    limit = 65536  # asyncio's default line limit

    def __init__(self):
        self.server = None
        self._tasks = set()

    async def start(self, address):
        host, port = split_address(address)
        self.server = await asyncio.start_server(self._serve, host, port, limit=self.limit)
        return join_address(self.server.sockets[0].getsockname())

    async def _serve(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self.session(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the peer went away (the modem does not notice), or the port is closing
        finally:
            writer.close()
            self._tasks.discard(task)

    async def session(self, reader, writer):
        raise NotImplementedError

    async def stop(self):
        if self.server is not None:
            self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()


class _Batched:
    """A connection's sink that sends what the modem writes in one turn of the event loop
    (an echo, the answer's lines, the URCs it set off) in one write, not one each."""

    def __init__(self, writer):
        self._writer = writer
        self._pending = bytearray()

    def __call__(self, data):
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending += data

    def _flush(self):
        data, self._pending = bytes(self._pending), bytearray()
        if not self._writer.is_closing():
            self._writer.write(data)


class TcpUart(TcpServer):
    def __init__(self, modem):
        super().__init__()
        self.modem = modem
        self._turn = asyncio.Lock()

    async def session(self, reader, writer):
        sink = _Batched(writer)
        async with self._turn:
            self.modem.attach(sink)
            try:
                while True:
                    data = await reader.read(4096)
                    if not data:
                        break
                    self.modem.feed(data)
            finally:
                self.modem.detach(sink)
                self.modem.gate.end()


class PtyUart:
    """A pseudo-terminal in raw mode (no CR/LF translation, no terminal echo). The
    emulator keeps the terminal end open, so hosts may open and close it at will."""

    def __init__(self, modem):
        self.modem = modem
        self.master = self.slave = None
        self.path = None
        self._sink = self._write  # one bound method, so detach() recognises it

    async def start(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        asyncio.get_running_loop().add_reader(self.master, self._readable)
        self.modem.attach(self._sink)
        self.path = os.ttyname(self.slave)
        return self.path

    def _readable(self):
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        if data:
            self.modem.feed(data)

    def _write(self, data):
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.master, view)
            except OSError:
                return  # nobody drains the terminal: the rest is lost, as on a real line
            view = view[written:]

    async def stop(self):
        if self.master is None:
            return
        asyncio.get_running_loop().remove_reader(self.master)
        self.modem.detach(self._sink)
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = None
