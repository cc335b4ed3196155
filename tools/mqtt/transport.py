"""The byte stream under the CLI's MQTT client: an OS socket, or a link through a
SIM7600 that this module brings up before and takes down after the MQTT work. With
TLS (tls_files: {"ca", "cert", "key"} PEM bytes) the socket is wrapped by the port
layer's open_tls (Python's ssl) and the modem link is a session of the modem's own
SSL stack (Sim7600.open_tls_link); the broker's certificate is verified either way.

open() returns a Stream the client takes over; close() runs whether open() got
through or not, and undoes what open() did (the client has closed the link by then).
"""

import asyncio
import os

from cellmqtt import port
from cellmqtt.config import power_lines
from cellmqtt.errors import TlsError
from cellmqtt.modem import Sim7600
from cellmqtt.power import PowerManager


class Unreachable(Exception):
    """No connection to the broker could be made (exit 5)."""


class ModemFailure(Exception):
    """A modem step failed (exit 6); `error` is what the driver raised."""

    def __init__(self, step, error):
        super().__init__("%s: %s" % (step, error))
        self.step = step
        self.error = error


class SocketTransport:
    def __init__(self, host, port_number, timeout_s, log, tls_files=None):
        self.address = "%s:%d" % (host, port_number)
        self.timeout_s = timeout_s
        self.log = log
        self.tls = tls_files

    def _connect(self):
        if self.tls is None:
            return port.open_tcp(self.address)
        return port.open_tls(self.address, self.tls["ca"], cert=self.tls["cert"], key=self.tls["key"])

    async def open(self):
        try:
            stream = await asyncio.wait_for(self._connect(), self.timeout_s)
        except asyncio.TimeoutError:
            raise Unreachable("cannot reach broker %s: no TCP connection within %g s"
                              % (self.address, self.timeout_s)) from None
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise Unreachable("cannot reach broker %s: %s" % (self.address, reason)) from None
        self.log("%s connection to %s open" % ("TLS" if self.tls else "TCP", self.address))
        return stream

    async def close(self):
        pass  # the client closed the socket


def uart_config(modem, baud):
    """HOST:PORT is the emulator's UART over TCP; anything else a serial device."""
    host, colon, number = modem.rpartition(":")
    if colon and host and number.isdigit():
        return {"address": modem, "name": "UART"}
    return {"device": modem, "baud": baud, "name": "UART"}


class ModemTransport:
    def __init__(self, modem, control, apn, baud, host, port_number, ledger, log, tls_files=None):
        self.uart = uart_config(modem, baud)
        self.control = control
        self.apn = apn
        self.host = host
        self.port_number = port_number
        self.ledger = ledger
        self.log = log
        self.tls = tls_files
        self.driver = None
        self.power = None
        self.powered_by_us = False
        self.answered = False  # NETCLOSE only to a modem that spoke: a silent one would hold us 120 s

    async def _step(self, what, awaitable):
        try:
            return await awaitable
        except Exception as error:
            raise ModemFailure(what, error) from None

    async def open(self):
        where = self.uart.get("address") or self.uart["device"]
        self.driver = driver = await self._step("open the UART %s" % where,
                                                Sim7600.open(self.uart, ledger=self.ledger))
        if self.control is not None:
            await self._step("power on through the pins", self._power_on())
        await self._step("handshake (RDY, or AT until it answers)", driver.power_up())
        self.answered = True
        self.log("modem answers AT")
        await self._step("attach (SIM, registration, APN %r, NETOPEN)" % self.apn, driver.attach(self.apn))
        self.log("modem attached, IP %s" % driver.ip)
        try:
            if self.tls is None:
                link = await driver.open_link(self.host, self.port_number, owner="MQTT")
            else:
                link = await driver.open_tls_link(self.host, self.port_number, ca=self.tls["ca"],
                                                  cert=self.tls["cert"], key=self.tls["key"], owner="MQTT")
        except TlsError:
            raise  # its own exit line: the certificate or handshake, not reachability
        except Exception as error:
            raise Unreachable("cannot reach broker %s:%d through the modem: %s"
                              % (self.host, self.port_number, error)) from None
        self.log("modem %s %d to %s:%d open" % ("TLS session" if self.tls else "link", link.number,
                                                self.host, self.port_number))
        return link

    async def _power_on(self):
        port.configure(control=self.control)
        self.power = power = PowerManager(power_lines())
        if power.status_high():
            self.log("modem already on (STATUS high)")
            return
        driver = self.driver

        async def booted():
            return driver.booted

        await power.power_on(booted)
        self.powered_by_us = True
        self.log("modem powered on through PWRKEY")

    async def close(self):
        """NETCLOSE, power off if we powered it on, close the UART; the first failure
        is raised once every step has been tried."""
        driver = self.driver
        if driver is None:
            return
        failure = None
        if self.answered:
            try:
                await driver.net_close()
                self.log("modem network closed (NETCLOSE)")
            except Exception as error:
                failure = ModemFailure("NETCLOSE", error)
        if self.powered_by_us:
            try:
                await self.power.power_off(driver.power_off)
                self.log("modem powered off")
            except Exception as error:
                failure = failure or ModemFailure("power off", error)
        try:
            await driver.close()
        except Exception as error:
            failure = failure or ModemFailure("close the UART", error)
        self.driver = None
        if failure is not None:
            raise failure
