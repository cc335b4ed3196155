"""The emulator for blocking code (tests, scripts): served by an event loop on a thread
of its own, with blocking clients for the UART and the control port.

  with ThreadedEmulator(power_on=True, time_scale=0) as emu:
      uart = Wire(emu.uart_address)
      uart.send(b"AT\\r")
      uart.expect(b"AT\\r\\r\\nOK\\r\\n")
"""

import asyncio
import socket
import threading
import time

from .emulator import Emulator
from .uart import split_address

CALL_TIMEOUT_S = 10  # a call into the loop thread that takes longer is a bug


class ThreadedEmulator:
    def __init__(self, uart="127.0.0.1:0", control="127.0.0.1:0", pty=False, **options):
        self.emulator = Emulator(**options)
        self._start_options = {"uart": uart, "control": control, "pty": pty}
        self.loop = None
        self._thread = None
        self.errors = []  # what the loop's exception handler saw: should stay empty

    def start(self):
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(context))
        self._thread = threading.Thread(target=self.loop.run_forever, name="sim7600-emu",
                                        daemon=True)
        self._thread.start()
        try:
            self.run(self.emulator.start(**self._start_options))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.loop is None:
            return
        try:
            self.run(self.emulator.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(CALL_TIMEOUT_S)
            self.loop.close()
            self.loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def run(self, coroutine):
        """Run a coroutine on the emulator's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(CALL_TIMEOUT_S)

    def call(self, function, *args, **kwargs):
        """Call a plain function on the emulator's loop thread and return its result."""
        async def call():
            return function(*args, **kwargs)
        return self.run(call())

    @property
    def uart_address(self):
        return self.emulator.uart_address

    @property
    def control_address(self):
        return self.emulator.control_address

    @property
    def pty_path(self):
        return self.emulator.pty_path

    def fault(self, name, **params):
        return self.call(self.emulator.fault, name, **params)

    def clear_faults(self):
        return self.call(self.emulator.clear_faults)

    def set_quirks(self, names, on=True):
        return self.call(self.emulator.set_quirks, names, on)

    def state(self):
        return self.call(self.emulator.state)

    def reset(self):
        return self.call(self.emulator.reset)

    def control(self, line):
        return self.call(self.emulator.control, line)


class Wire:
    """A blocking TCP client that keeps what it received, for exact-byte checks."""

    def __init__(self, address, timeout_s=2.0):
        self.timeout_s = timeout_s
        self.sock = socket.create_connection(split_address(address), timeout=timeout_s)
        self.buffer = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not chunk:
            raise EOFError("the other end closed; received so far: %r" % bytes(self.buffer))
        self.buffer += chunk
        return True

    def _take(self, size):
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_exact(self, size, timeout_s=None):
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while len(self.buffer) < size:
            if not self._fill(deadline):
                raise TimeoutError("wanted %d bytes, got %r" % (size, bytes(self.buffer)))
        return self._take(size)

    def read_until(self, marker, timeout_s=None):
        """Everything up to and including marker."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while marker not in self.buffer:
            if not self._fill(deadline):
                raise TimeoutError("no %r in %r" % (marker, bytes(self.buffer)))
        return self._take(self.buffer.index(marker) + len(marker))

    def drain(self, quiet_s=0.05):
        """Everything that arrives until the line has been quiet for quiet_s."""
        while self._fill(time.monotonic() + quiet_s):
            pass
        return self._take(len(self.buffer))

    def expect(self, expected, timeout_s=None):
        """The next bytes must be exactly `expected` (AssertionError otherwise)."""
        try:
            got = self.read_exact(len(expected), timeout_s)
        except TimeoutError:
            got = self._take(len(self.buffer))
        if got != expected:
            raise AssertionError("expected %r\n     got %r (then %r)"
                                 % (expected, got, bytes(self.buffer)))

    def close(self):
        self.sock.close()


class Control(Wire):
    """The control port: ask(line) -> the reply line."""

    def ask(self, line):
        self.send(line.encode() + b"\n")
        return self.read_until(b"\n").decode().rstrip("\n")
