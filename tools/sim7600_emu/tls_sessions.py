"""The SSL stack's sessions (tls.py has the commands and the dialect): each a real TLS
connection (Python's ssl) bridged to a loopback server, verified against the CA file of
its context; the certificate files in the modem's flash; the receive buffers.
"""

import asyncio
import logging
import os
import ssl
import tempfile

from .links import Link, hang_up, is_ip, loopback
from .model import LATENCY_MS, MAX_CONNECT_MS, ON, RX_CHUNK, RX_LIMIT

log = logging.getLogger("sim7600_emu")
SESSIONS = 2
CONTEXTS = 10
MAX_FILE = 10240     # AT+CCERTDOWN: 1-10240 bytes
ERR_TIMEOUT, ERR_DNS, ERR_CONNECT, ERR_HANDSHAKE, ERR_NO_CERTS = 5, 13, 14, 15, 19
ERR_NETWORK = 9


def _context():
    return {"sslversion": 4, "authmode": 0, "ignorelocaltime": 0, "negotiatetime": 300,
            "cacert": "", "clientcert": "", "clientkey": "", "enableSNI": 0}


class Session(Link):
    """A TCP link's bookkeeping, plus whether it runs TLS."""

    def __init__(self, number, host, port, secure):
        super().__init__(number, host, port)
        self.secure = secure


class TlsStack:
    def __init__(self, modem):
        self.modem = modem
        self.files = {}  # the flash: name -> bytes
        self.sessions = {}
        self.buffers = [bytearray() for _ in range(SESSIONS)]
        self.notified = [False] * SESSIONS
        self.tasks = set()
        self.settings()

    def settings(self):
        """What a boot restores."""
        self.contexts = [_context() for _ in range(CONTEXTS)]
        self.session_context = [0] * SESSIONS
        self.report_send = 0
        self.recv_manual = 0
        self.started = False

    def numbers(self):
        return sorted(self.sessions)

    def drop_all(self):
        """Power, reset or network gone: every connection reset, no URC, and the
        service stopped (AT+CCHSTART again before the next session)."""
        for session in self.sessions.values():
            hang_up(session, abort=True)
        self.sessions.clear()
        self.started = False
        for number in range(SESSIONS):
            self.buffers[number] = bytearray()
            self.notified[number] = False

    async def wait_closed(self):
        await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def is_open(self, number):
        session = self.sessions.get(number)
        return session is not None and session.state == "open"

    # -- opening and closing --------------------------------------------------------
    def open(self, number, host, port, secure):
        self.buffers[number] = bytearray()
        self.notified[number] = False
        session = Session(number, host, port, secure)
        self.sessions[number] = session
        session.task = asyncio.get_running_loop().create_task(self._run(session))
        self.tasks.add(session.task)
        session.task.add_done_callback(self.tasks.discard)

    def close(self, number):
        session = self.sessions[number]
        session.state = "closing"
        hang_up(session, abort=False)
        self.modem.after(LATENCY_MS["cipclose"], self._closed, session)

    def _closed(self, session):
        if self.sessions.get(session.number) is session:
            del self.sessions[session.number]
            self.modem.urc(b"+CCHCLOSE: %d,0" % session.number)

    def stop(self):
        """AT+CCHSTOP: every session closed politely."""
        for session in self.sessions.values():
            hang_up(session, abort=False)
        self.sessions.clear()
        self.started = False

    def _ssl_context(self, number):
        """(ssl context, None) for the session's SSL context, or (None, err)."""
        config = self.contexts[self.session_context[number]]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.maximum_version = ssl.TLSVersion.TLSv1_2  # the SIM7600's stack has no TLS 1.3
        if config["authmode"] == 0:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            ca = self.files.get(config["cacert"])
            if ca is None:
                return None, ERR_NO_CERTS
            try:
                context.load_verify_locations(cadata=ca.decode("latin-1"))
            except (ssl.SSLError, ValueError):
                return None, ERR_HANDSHAKE
        if config["authmode"] in (2, 3):
            cert, key = self.files.get(config["clientcert"]), self.files.get(config["clientkey"])
            if cert is None or key is None:
                return None, ERR_NO_CERTS
            problem = _load_client(context, cert, key)
            if problem:
                return None, problem
        return context, None

    async def _run(self, session):
        modem = self.modem
        number = session.number
        delay = modem.clock.seconds(LATENCY_MS["cipopen"])
        if delay:
            await asyncio.sleep(delay)
        error_code, reader = await self._connect(session)
        if error_code:
            if self.sessions.get(number) is session:
                del self.sessions[number]
                modem.urc(b"+CCHOPEN: %d,%d" % (number, error_code))
            return
        session.state = "open"
        modem.urc(b"+CCHOPEN: %d,0" % number)
        await self._pump(session, reader)

    async def _connect(self, session):
        """(0, reader) once connected (and the handshake done), or (err, None)."""
        address = loopback(session.host)
        if address is None:
            log.warning("tls %d: %s is not a loopback address; refused", session.number, session.host)
            return (ERR_CONNECT if is_ip(session.host) else ERR_DNS), None
        context = None
        if session.secure:
            context, problem = self._ssl_context(session.number)
            if problem:
                return problem, None
        timeout_s = MAX_CONNECT_MS / 1000.0
        try:
            reader, session.writer = await asyncio.wait_for(asyncio.open_connection(
                address, session.port, ssl=context,
                server_hostname=session.host if context is not None else None), timeout_s)
        except ssl.SSLError as problem:
            log.warning("tls %d: handshake with %s:%d failed: %s", session.number, session.host,
                        session.port, getattr(problem, "verify_message", None) or problem)
            return ERR_HANDSHAKE, None
        except asyncio.TimeoutError:
            return ERR_TIMEOUT, None
        except OSError:
            return ERR_CONNECT, None
        return 0, reader

    async def _pump(self, session, reader):
        number = session.number
        try:
            while True:
                room = RX_LIMIT - len(self.buffers[number]) if self.recv_manual else RX_CHUNK
                if room <= 0:
                    session.room.clear()
                    await session.room.wait()
                    continue
                data = await reader.read(min(RX_CHUNK, room))
                if not data:
                    break
                self._arrived(session, data)
        except (OSError, ssl.SSLError):
            pass  # reset, or a TLS alert from the server: the same as a close
        if self.sessions.get(number) is session and session.state == "open":
            del self.sessions[number]
            session.writer.close()
            self.modem.urc(b"+CCH_PEER_CLOSED: %d" % number)

    def _arrived(self, session, data):
        modem = self.modem
        if modem.state != ON or session.state != "open":
            return
        number = session.number
        if not self.recv_manual:
            modem.urc_raw(b"\r\n+CCHRECV: DATA,%d,%d\r\n" % (number, len(data)) + data)
            return
        self.buffers[number] += data
        if not self.notified[number]:
            self.notified[number] = True
            modem.urc(b"+CCHEVENT: %d,RECV EVENT" % number)

    def read(self, number, max_bytes):
        buffer = self.buffers[number]
        data = bytes(buffer[:max_bytes])
        del buffer[:max_bytes]
        if not buffer:
            self.notified[number] = False
        session = self.sessions.get(number)
        if session is not None:
            session.room.set()
        return data


def _load_client(context, cert, key):
    """Python's ssl loads a certificate chain from files only: a private temporary
    folder holds them for the moment of loading."""
    with tempfile.TemporaryDirectory(prefix="sim7600-tls-") as folder:
        cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert)
        with open(key_path, "wb") as f:
            f.write(key)
        try:
            context.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, ValueError):
            return ERR_NO_CERTS
    return 0
