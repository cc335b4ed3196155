# Helpers shared by tests on both runtimes (no pytest here: the MicroPython lane
# imports this too).
import asyncio
import binascii
import gc
import json
import os
import socket
import sys

from cellmqtt import port

MICROPYTHON = sys.implementation.name == "micropython"


def example_config(adjust=None):
    """config.example.json checked, as device fake01, after adjust(raw) if given; the
    checking code unloaded after, as a board does after boot."""
    from cellmqtt import config, unload

    try:
        with open((__file__.rpartition("/")[0] or ".") + "/../config.example.json") as f:
            raw = json.loads(f.read())
        raw["device_id"] = "fake01"
        if adjust is not None:
            adjust(raw)
        return config.validate(raw)
    finally:
        unload("cellmqtt.config")


def run(coro):
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


def retained_bytes(fn, repetitions, warmup=3):
    """Bytes still allocated after gc once fn() ran `repetitions` times, past warm-up.
    Exact under MicroPython; under CPython it is tracemalloc's count, give or take
    interpreter caches, so CPython callers allow a margin."""
    for _ in range(warmup):
        fn()
    gc.collect()
    before = port.mem_alloc()
    for _ in range(repetitions):
        fn()
    gc.collect()
    return port.mem_alloc() - before


async def until(ready, timeout_ms=2000):
    """Return once ready() is true, checking at every turn of the loop: a test waits for
    the state it checks, never for a lucky moment; AssertionError after timeout_ms."""
    start = port.ticks_ms()
    while not ready():
        if port.ticks_diff(port.ticks_ms(), start) > timeout_ms:
            raise AssertionError("not reached in %d ms" % timeout_ms)
        await asyncio.sleep(0.001)


async def caught(coro, exception_type):
    """Await coro and return the exception it raised, which must be exception_type."""
    try:
        await coro
    except exception_type as error:
        return error
    raise AssertionError("%s not raised" % exception_type.__name__)


def raises(exception_type, fn, *args, **kwargs):
    """Call fn and return the exception it raised, which must be exception_type."""
    try:
        fn(*args, **kwargs)
    except exception_type as error:
        return error
    raise AssertionError("%s not raised" % exception_type.__name__)


def temp_folder(prefix):
    """A new, unique folder (MicroPython has no tempfile): remove it with remove_tree."""
    root = os.getenv("TMPDIR") or "/tmp"
    path = "%s/%s-%s" % (root, prefix, binascii.hexlify(os.urandom(6)).decode())
    os.mkdir(path)
    return path


def remove_tree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        child = path + "/" + name
        try:
            os.remove(child)
        except OSError:
            remove_tree(child)
    os.rmdir(path)


def service(name):
    """What `python -m tools.services` exported as name: an address "host:port", a folder."""
    value = os.getenv(name)
    if not value:
        raise AssertionError("%s is not set: run the lanes under `python -m tools.services -- ...` "
                             "(it starts the emulator, an echo server and the brokers, and exports "
                             "their addresses)" % name)
    return value


def request(address, line, timeout_s=5):
    """One line to the control port at address ("host:port"); its reply line, stripped."""
    host, _, number = address.rpartition(":")
    sock = socket.socket()
    try:
        sock.settimeout(timeout_s)
        sock.connect(socket.getaddrinfo(host, int(number))[0][-1])
        sock.send(line.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(256)
            if not chunk:
                break
            reply += chunk
    finally:
        sock.close()
    return reply.decode().strip()


def tls_pki(name):
    """A file of the TLS brokers' test PKI (ca.crt, client.key, ...)."""
    with open(service("CELLMQTT_TLS_PKI") + "/" + name, "rb") as f:
        return f.read()


def restart_tls_broker():
    """Restart the TLS mosquitto (its live connections are reset); returns once it listens."""
    reply = request(service("CELLMQTT_TLS_CONTROL"), "RESTART", 30)
    assert reply == "OK", reply
