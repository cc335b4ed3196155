"""TLS through the SIM7600's own SSL stack (AT+CCH*, ATM ch. 10): a session is a Stream.

Sim7600.open_tls_link() makes a TlsService on first use; the service owns the modem's
two SSL sessions (0-1), the certificate files, the SSL contexts and the CCH service.
A TlsSession is a Link (link.py: the same states, bounded buffer, URC-driven reads,
close and ledger entry) whose AT commands are the CCH ones. The dialect:

  files     AT+CCERTLIST -> `+CCERTLIST: "<name>"` per file, OK.
            AT+CCERTDOWN="<name>",<len 1-10240> -> `>`, the PEM bytes, OK.
            A file is named by its content (ca-<8 hex of its SHA-256>.pem; cert-, key-),
            so one the modem has is never sent again and a changed CA is a new file.
  context   AT+CSSLCFG="sslversion",<c>,4 (all the modem has), "authmode",<c>,1|2
            (server; server and client), "cacert"/"clientcert"/"clientkey",<c>,"<name>",
            "enableSNI",<c>,1 (firmware without SNI answers ERROR: ignored). Context <c>
            is the session number; it is set again only when what it should hold changed.
            The modem checks validity against its own clock (ignorelocaltime stays 0).
  service   AT+CCHSET=1,1 (report send results, manual receive), AT+CCHSTART -> OK and
            +CCHSTART: 0 in either order; ERROR or +CCHSTART: <err> (already started by
            an earlier run) -> AT+CCHSTOP and start again. When the last session closed:
            AT+CCHSTOP -> OK and +CCHSTOP: 0 in either order.
  open      AT+CCHSSLCFG=<s>,<c>; AT+CCHOPEN=<s>,"<host>",<port>,2 -> OK, then
            +CCHOPEN: <s>,<err> after the handshake; a failure may also come as
            +CCHOPEN: <s>,<err> then ERROR.
  send      AT+CCHSEND=<s>,<len 1-2048> -> `>`, the bytes, OK, +CCHSEND: <s>,<err>.
  receive   +CCHEVENT: <s>,RECV EVENT when bytes reach an empty cache; then
            AT+CCHRECV=<s>,<max> -> OK, +CCHRECV: DATA,<s>,<len>, <len> raw bytes,
            +CCHRECV: <s>,<err> (the data may also come before the OK; a read of fewer
            than <max> bytes emptied the cache; an empty cache may answer ERROR).
  close     AT+CCHCLOSE=<s> -> OK, +CCHCLOSE: <s>,<err>. +CCH_PEER_CLOSED: <s>: the
            server closed (unread bytes stay readable, as CLOSE_WAIT); an unasked
            +CCHCLOSE: <s>,<err>: the modem closed it.
  table     AT+CCHOPEN? -> `+CCHOPEN: <s>,"<host>",<port>,2,<bind>` for an open session,
            `+CCHOPEN: <s>,"",,,` for a free one (read for `netstat`).
The modem cannot say which check failed: a wrong CA, an expired certificate, another
host name or a refused client certificate all end as +CCHOPEN: <s>,15 (TlsError).
"""

import asyncio
import binascii
import hashlib

from .._const import const
from ..errors import AtError, ConfigError, ModemError, StateError, Timeout
from .at_parser import split_fields, text, to_int
from .link import number_for
from .sim7600 import NET_OPEN
from .tls_session import TlsSession, cch_error, tls_failed
from . import timeouts_tls_ppp  # noqa: F401  # loaded now, at boot, not inside a window's heap

SESSIONS = const(2)  # the modem's SSL sessions 0-1 (ATM 10: AT+CCHOPEN=?)
FILE_LIMIT = const(10240)  # AT+CCERTDOWN takes files of 1-10240 bytes
_URCS = (b"+CCHEVENT:", b"+CCH_PEER_CLOSED:", b"+CCHCLOSE:")


def file_name(kind, data):
    """`ca-1a2b3c4d.pem`: the kind and the first 4 bytes of the SHA-256 of the content."""
    return "%s-%s.pem" % (kind, binascii.hexlify(hashlib.sha256(data).digest()[:4]).decode())


def _pem(value, what):
    if isinstance(value, str):
        value = value.encode()
    if not value or len(value) > FILE_LIMIT:
        raise ConfigError("tls." + what, "PEM bytes, 1-%d of them" % FILE_LIMIT)
    return value


async def open_session(driver, host, port_number, ca, cert, key, owner, server_name):
    """Sim7600.open_tls_link(): a session of the driver's TLS service, made on first use."""
    if driver.net != NET_OPEN:
        raise StateError("modem network", driver.net, "open a TLS session")
    if driver.tls is None:
        driver.tls = TlsService(driver)
    return await driver.tls.open(host, port_number, ca, cert, key, owner, server_name)


class TlsService:
    """The modem's SSL service for one driver: sessions, files, contexts, URCs."""

    def __init__(self, driver):
        self.channel = driver.channel
        self.ledger = driver.ledger
        self.slots: list = [None] * SESSIONS  # the holder of TlsSessions (link.Link)
        self.dirty = 0
        self._contexts: list = [None] * SESSIONS  # what each SSL context was set to
        self._files = None  # names the modem holds (AT+CCERTLIST), once listed
        self._setup = asyncio.Lock()
        self._sub = None
        self.started = False  # AT+CCHSTART sent and no AT+CCHSTOP since
        self.modem_table = None  # {session: (host, port)} from the last AT+CCHOPEN?

    async def open(self, host, port_number, ca, cert, key, owner, server_name):
        number = number_for(self, host, port_number, "modem TLS sessions")
        if server_name is not None and server_name != host:
            raise ConfigError("tls.server_name", "the modem checks the host it connects to: leave it unset")
        if (cert is None) != (key is None):
            raise ConfigError("tls.cert", "a client certificate and its key, both or neither")
        files = [("cacert", "ca", _pem(ca, "ca"))]
        if cert is not None:
            files.append(("clientcert", "cert", _pem(cert, "cert")))
            files.append(("clientkey", "key", _pem(key, "key")))

        async def prepare(number):
            async with self._setup:
                await self._context(number, files)
                await self._start()
            await self.channel.command("AT+CCHSSLCFG=%d,%d" % (number, number))

        try:
            return await TlsSession(self, number, host, port_number, owner).open(prepare)
        except BaseException:  # a failure may come from a file or context we took as set:
            self._files = None  # list and set them again next time
            self._contexts[number] = None
            raise

    # files and contexts

    async def _context(self, number, files):
        names = []
        for setting, kind, data in files:
            name = file_name(kind, data)
            await self._upload(name, data)
            names.append((setting, name))
        if self._contexts[number] == names:
            return
        self._contexts[number] = None
        command = self.channel.command
        await command('AT+CSSLCFG="sslversion",%d,4' % number)
        await command('AT+CSSLCFG="authmode",%d,%d' % (number, 2 if len(names) > 1 else 1))
        for setting, name in names:
            await command('AT+CSSLCFG="%s",%d,"%s"' % (setting, number, name))
        try:
            await command('AT+CSSLCFG="enableSNI",%d,1' % number)
        except AtError:  # firmware without SNI: verification still runs
            pass
        self._contexts[number] = names

    async def _upload(self, name, data):
        if self._files is None:
            response = await self.channel.command("AT+CCERTLIST")
            self._files = [text(split_fields(line)[0]) for line in response.lines]
        if name in self._files:
            return
        await self.channel.command('AT+CCERTDOWN="%s",%d' % (name, len(data)), data=data)
        self._files.append(name)

    # the service

    async def _start(self):
        if self.started:
            return
        if self._sub is None:
            self._sub = self.channel.subscribe(_URCS, self._on_urc, "URC sim7600 tls")
        await self.channel.command("AT+CCHSET=1,1")
        self.started = True
        try:
            code = await self._cchstart()
        except AtError:
            code = -1
        if code:  # started before (by a run that did not stop it)
            await self._stop()
            self.started = True
            code = await self._cchstart()
            if code:
                raise tls_failed("+CCHSTART err %d: %s" % (code, cch_error(code)))

    async def _cchstart(self):
        return (await self.channel.command("AT+CCHSTART", urc=True)).code()

    async def _stop(self):
        """AT+CCHSTOP; a modem that refuses or does not answer has no service to stop."""
        self.started = False  # the SSL contexts (AT+CSSLCFG) outlive the service
        try:
            await self.channel.command("AT+CCHSTOP", urc=True)
        except (AtError, Timeout, ModemError):
            pass

    async def idle(self):
        """No session left: stop the service and drop the URC subscription."""
        if any(self.slots):
            return
        if self.started:
            await self._stop()
        if self._sub is not None:
            self.channel.unsubscribe(self._sub)
            self._sub = None

    async def close(self):
        """Close every session, then the service. Idempotent."""
        for session in self.slots:
            if session is not None:
                await session.close()
        await self.idle()

    # what the sessions and the driver call

    def drop_all(self, reason):
        """The modem lost every session (restart, power, network, UART gone); its
        service and contexts are gone or unknown, so the next open sets them again."""
        for session in self.slots:
            if session is not None:
                session.modem_dropped(reason)
        self.dirty = 0
        self.started = False
        self._contexts = [None] * SESSIONS

    # URCs

    def _on_urc(self, line, chunk):
        fields = split_fields(line)
        number = to_int(fields[0]) if fields else None
        if number is None or not 0 <= number < SESSIONS:
            return
        session = self.slots[number]
        if line.startswith(b"+CCHEVENT:"):
            if session is not None and b"RECV EVENT" in line:
                session.data_waiting()
            return
        # the server closed (its unread bytes stay readable), or the modem closed it
        self.dirty &= ~(1 << number)
        if session is not None:
            if line.startswith(b"+CCH_PEER_CLOSED:"):
                session.modem_dropped("closed by the server", True)
            elif len(fields) == 2:
                session.modem_dropped("closed by the modem: %s" % cch_error(to_int(fields[1])))
