# The SIM7600 emulator's side of the driver tests, on both runtimes: its addresses from
# the environment (python -m tools.services -- COMMAND sets them), its control port, and a
# driver attached to it. A module of its own, so that a test using these does not compile
# another test module too (a small heap fails at that).
import json
import os
import socket

from cellmqtt.modem.sim7600 import Sim7600
from modem_fakes import links


_ENV = ("CELLMQTT_MODEM", "CELLMQTT_CONTROL", "CELLMQTT_ECHO")
BOUNDED = {  # every wait bounded well below a test's patience; the emulator runs at scale 0
    "default": 5000, "+NETOPEN": 10000, "+NETCLOSE": 10000, "+CIPOPEN": 10000,
    "+CIPSEND": 10000, "+CIPCLOSE": 10000, "boot": 5000, "read": 5000, "register": 5000,
}


def address(name):
    value = os.getenv(name)
    if not value:
        raise AssertionError("%s is not set: run the lanes under `python -m tools.services -- ...` "
                             "(or start the emulator and an echo server and export %s)" % (name, ", ".join(_ENV)))
    host, _, number = value.rpartition(":")
    return host, int(number)


def control(line):
    """One request on the emulator's control port; returns the reply line."""
    host, number = address("CELLMQTT_CONTROL")
    sock = socket.socket()
    try:
        sock.settimeout(5)
        sock.connect(socket.getaddrinfo(host, number)[0][-1])
        sock.send(line.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(256)
            if not chunk:
                break
            reply += chunk
    finally:
        sock.close()
    reply = reply.decode().strip()
    if reply.startswith("ERR"):
        raise AssertionError("control %r: %s" % (line, reply))
    return reply


def modem_state():
    return json.loads(control("STATE"))


def fresh_modem():
    control("CLEAR")
    control("RESET")
    control("POWER ON")


async def ready_driver(book, timeouts=BOUNDED):
    host, number = address("CELLMQTT_MODEM")
    driver = await Sim7600.open({"address": "%s:%d" % (host, number)}, timeouts=timeouts, ledger=book)
    await driver.power_up()
    await driver.attach("internet")
    return driver


async def teardown(driver):
    try:
        for link in links(driver):
            await link.close()
        await driver.net_close()
    finally:
        await driver.close()
