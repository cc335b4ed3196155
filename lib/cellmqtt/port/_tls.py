# TLS over sockets. Shared by both runtimes: PEM to DER (MicroPython's mbedTLS may be
# built without a PEM parser, DER always works), naming the cause of a failed
# handshake, and the stream that names a refusal which comes after our side of the
# handshake (TLS 1.3 checks the client certificate then). MicroPython's open_tls is
# here too, loaded at its first use (port/_mp.py); CPython's is in port/cpython.py.
import binascii

from ..errors import TLS_EXPIRED, TLS_FAILED, TLS_HOST, TLS_REFUSED, TLS_UNTRUSTED, Timeout, TlsError

HANDSHAKE_TIMEOUT_MS = 30000  # per socket operation of connect and handshake, over a cellular link
MAX_DETAIL = 120  # the TLS stack's words in an error: enough to act on, bounded
_EPIPE = 32
_ECONNRESET = 104
_ETIMEDOUT = 110
# lower-case phrases of mbedTLS (x509_crt_verify_info, strerror) and OpenSSL, by cause
_CAUSES = (
    (TLS_UNTRUSTED, ("not correctly signed", "not trusted", "unknown ca", "issuer", "self-signed",
                     "self signed")),
    (TLS_EXPIRED, ("expired", "in the future", "not yet valid")),
    (TLS_HOST, ("common name", "mismatch", "not valid for")),
    (TLS_REFUSED, ("alert", "certificate required", "handshake failure", "bad certificate",
                   "connection lost", "reset by peer", "broken pipe")),
)


def der_blocks(data):
    """The DER bodies of the PEM blocks in `data` (bytes); DER given as it is."""
    if b"-----BEGIN" not in data:
        return [bytes(data)]
    blocks = []
    for part in data.split(b"-----BEGIN")[1:]:
        body = part.split(b"-----", 1)[1].split(b"-----END", 1)[0]
        try:
            blocks.append(binascii.a2b_base64(body.replace(b"\r", b"").replace(b"\n", b"")))
        except ValueError:
            raise TlsError(TLS_FAILED, "a PEM block is not valid base64")
    return blocks


def detail(error):
    """The words of an error from a TLS stack, on one line and bounded."""
    words = " ".join([str(arg) for arg in error.args]).replace("\n", " ").strip()
    return words[:MAX_DETAIL]


def cause(error):
    """The TLS_* reason for an error raised by a TLS stack during or right after the
    handshake; a reset or broken pipe then means the broker refused us."""
    text = detail(error).lower()
    for reason, phrases in _CAUSES:
        for phrase in phrases:
            if phrase in text:
                return reason
    if error.args and error.args[0] in (_EPIPE, _ECONNRESET):
        return TLS_REFUSED
    return TLS_FAILED


class TlsStream:
    """A Stream over an established TLS session. Until the first bytes arrive, an error
    is the broker refusing the session and becomes a TlsError naming the cause; after
    that, errors pass as they are (the MQTT client reports them as LinkClosed)."""

    def __init__(self, stream):
        self._stream = stream
        self._confirmed = False
        self._refusal = None  # the first failure names the cause for the reader and the writer

    async def _refused(self, error):
        if self._refusal is None:
            self._refusal = TlsError(cause(error), detail(error))
        await self._stream.close()
        return self._refusal

    async def read(self, max_bytes):
        if self._confirmed:
            return await self._stream.read(max_bytes)
        if self._refusal is not None:
            raise self._refusal
        try:
            data = await self._stream.read(max_bytes)
        except (OSError, ValueError) as error:
            raise await self._refused(error)
        if data:
            self._confirmed = True
        return data

    async def write(self, data):
        if self._confirmed:
            return await self._stream.write(data)
        if self._refusal is not None:
            raise self._refusal
        try:
            await self._stream.write(data)
        except (OSError, ValueError) as error:
            raise await self._refused(error)

    async def close(self):
        await self._stream.close()


async def open_mbedtls(address, ca, server_hostname=None, cert=None, key=None, timeout_ms=None):
    """port.open_tls on MicroPython: a Stream over TLS to "host:port", the server
    verified against `ca` (bytes, PEM or DER) and its name (server_hostname, default
    the host; also sent as SNI); cert/key (bytes) for mutual TLS. A failed handshake is
    a TlsError naming the cause. The connect and handshake block the event loop
    (MicroPython's TLS socket cannot tell when a non-blocking handshake is done), each
    socket operation bounded by timeout_ms."""
    import asyncio
    import socket

    import tls

    from .stream import AsyncioStream

    timeout_ms = timeout_ms or HANDSHAKE_TIMEOUT_MS
    host, _, number = address.rpartition(":")
    context = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    context.verify_mode = tls.CERT_REQUIRED  # type: ignore[attr-defined]  # the stubs lack it; the C type has it
    try:
        for block in der_blocks(ca):
            context.load_verify_locations(block)
        if cert is not None:
            context.load_cert_chain(der_blocks(cert)[0], der_blocks(key)[0])
    except ValueError as error:  # the words name the part ("invalid cert", "invalid key")
        raise TlsError(TLS_FAILED, "cannot load CA, certificate or key: " + detail(error))
    info = socket.getaddrinfo(host, int(number), 0, socket.SOCK_STREAM)[0]
    sock = socket.socket(info[0], info[1], info[2])
    try:
        sock.settimeout(timeout_ms / 1000)
        sock.connect(info[-1])
        try:
            session = context.wrap_socket(sock, server_hostname=server_hostname or host)
        except (OSError, ValueError) as error:
            if error.args and error.args[0] == _ETIMEDOUT:
                raise Timeout("TLS handshake with " + address, timeout_ms)
            raise TlsError(cause(error), detail(error))
    except BaseException as error:
        sock.close()
        raise error
    session.setblocking(False)
    stream = asyncio.StreamReader(session)
    return TlsStream(AsyncioStream(stream, stream))
