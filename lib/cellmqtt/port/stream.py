"""Stream: the one async byte-stream interface of the library.

A modem link, a UART and an OS socket all look like this to their users:
  await read(max_bytes) -> bytes   (b"" once the stream has ended)
  await write(data)                (all of it, or an error)
  await close()                    (idempotent)
"""


class AsyncioStream:
    """A Stream over an asyncio reader/writer pair (sockets, and machine.UART on the
    board, where one object serves as both)."""

    def __init__(self, reader, writer):
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes):
        if self._writer is None:
            return b""
        return await self._reader.read(max_bytes)

    async def write(self, data):
        if self._writer is None:
            raise OSError(9, "stream closed")
        self._writer.write(data)
        await self._writer.drain()

    async def close(self):
        writer = self._writer
        if writer is None:
            return
        self._writer = None
        self._reader = None
        try:
            writer.close()
            await writer.wait_closed()
        except OSError:
            pass
