# The SIM7600 emulator's side of the driver tests, on both runtimes: its addresses from
# the environment (python -m tools.services -- COMMAND sets them), its control port, and a
# driver attached to it. A module of its own, so that a test using these does not compile
# another test module too (a small heap fails at that).
import json

from cellmqtt.modem.sim7600 import Sim7600
from modem_fakes import links
from support import request, service

BOUNDED = {  # every wait bounded well below a test's patience; the emulator runs at scale 0
    "default": 5000, "+NETOPEN": 10000, "+NETCLOSE": 10000, "+CIPOPEN": 10000,
    "+CIPSEND": 10000, "+CIPCLOSE": 10000, "boot": 5000, "read": 5000, "register": 5000,
}


def address(name):
    """(host, port) of an address the services exported (CELLMQTT_MODEM, _CONTROL, _ECHO)."""
    host, _, number = service(name).rpartition(":")
    return host, int(number)


def control(line):
    """One request on the emulator's control port; returns the reply line."""
    reply = request(service("CELLMQTT_CONTROL"), line)
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
    driver = await Sim7600.open({"address": service("CELLMQTT_MODEM")}, timeouts=timeouts, ledger=book)
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
