"""The command line of `python -m tools.mqtt` (see the package docstring)."""

import argparse
import asyncio
import os
import signal
import sys
import traceback

from tools.board_files import LIB

if LIB not in sys.path:
    sys.path.insert(0, LIB)

from cellmqtt.errors import (  # noqa: E402
    ConfigError,
    LimitExceeded,
    LinkClosed,
    LocalProtocolError,
    ModemError,
    MqttRefused,
    RemoteProtocolError,
    SubscribeFailed,
    Timeout,
    TlsError,
)
from cellmqtt.ledger import Ledger  # noqa: E402
from cellmqtt.mqtt import MqttClient, Will  # noqa: E402
from cellmqtt.mqtt.topic import filter_error, matches, topic_error  # noqa: E402

from .transport import ModemFailure, ModemTransport, SocketTransport, Unreachable  # noqa: E402

EXIT_OK = 0
EXIT_FAILED = 1  # unexpected: a traceback follows
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_TIMEOUT = 4
EXIT_LINK = 5
EXIT_MODEM = 6
EXIT_SUBSCRIBE = 7
EXIT_PROTOCOL = 8
EXIT_LEAK = 9
EXIT_INTERRUPTED = 130

DEFAULT_MAX_PACKET = 256 * 1024  # a PC has room; the board's 2 KiB would cut off big messages
ACK_LEAVE_S = 2  # after the last message (-C), how long its acknowledgement may take to go out


class UsageError(Exception):
    pass


class WaitExpired(Exception):
    """-W passed before -C messages came."""


class Leak(Exception):
    """The ledger was not empty at the end: a bug in the library."""


def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--help", action="help", help="show this help and exit")
    common.add_argument("-h", "--host", default="127.0.0.1", help="broker host (default 127.0.0.1)")
    common.add_argument("-p", "--port", type=int, help="broker port (default 1883, 8883 with --tls)")
    common.add_argument("-i", "--id", help="client id (default cellmqtt-pub|sub-PID; \"\" for none)")
    common.add_argument("-k", "--keepalive", type=int, default=60, metavar="S",
                        help="keepalive in seconds, 0 for none (default 60)")
    common.add_argument("-u", "--username", help="user name for the broker (default: none)")
    common.add_argument("-P", "--pw", help="password")
    common.add_argument("-q", "--qos", type=int, choices=(0, 1, 2), default=0,
                        help="QoS of the message (pub) or the subscriptions (sub) (default 0)")
    common.add_argument("-c", "--disable-clean-session", action="store_true",
                        help="persistent session: the broker keeps subscriptions and queues QoS 1/2 "
                             "messages while we are away (needs -i)")
    common.add_argument("--will-topic", help="the broker publishes a will here if we vanish (default: no will)")
    common.add_argument("--will-payload", default="", help="the will's payload (default empty)")
    common.add_argument("--will-qos", type=int, choices=(0, 1, 2), default=0, help="the will's QoS (default 0)")
    common.add_argument("--will-retain", action="store_true", help="the broker retains the will")
    common.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="bound on the TCP connect, CONNACK and each acknowledgement (default 30)")
    common.add_argument("--max-packet", type=int, default=DEFAULT_MAX_PACKET, metavar="BYTES",
                        help="largest packet accepted from the broker (default %(default)s)")
    common.add_argument("-d", "--debug", action="store_true", help="print each step on stderr")
    tls = common.add_argument_group("TLS (the broker's certificate is always verified)")
    tls.add_argument("--tls", action="store_true", help="TLS to the broker: over the socket with Python's "
                     "ssl, through the modem with its SSL stack (AT+CCH*)")
    tls.add_argument("--cafile", metavar="F", help="the CA (PEM) the broker's certificate must chain to")
    tls.add_argument("--cert", metavar="F", help="client certificate (PEM) for mutual TLS; needs --key")
    tls.add_argument("--key", metavar="F", help="the client certificate's private key (PEM)")
    modem = common.add_argument_group("through a SIM7600")
    modem.add_argument("--modem", metavar="HOST:PORT|DEVICE",
                       help="the emulator's UART, or a modem's AT port (/dev/ttyUSB2)")
    modem.add_argument("--control", metavar="HOST:PORT",
                       help="the emulator's control port: power the modem on through PWRKEY if off")
    modem.add_argument("--apn", default="internet", help="access point name (default internet)")
    modem.add_argument("--baud", type=int, default=115200, help="serial speed of a DEVICE (default %(default)s)")

    parser = argparse.ArgumentParser(prog="python -m tools.mqtt", add_help=False,
                                     description="Publish or subscribe with cellmqtt's MQTT client.")
    parser.add_argument("--help", action="help", help="show this help and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="pub|sub")
    pub = commands.add_parser("pub", parents=[common], add_help=False, help="publish one message",
                              description="Publish one message with cellmqtt's MQTT client, as mosquitto_pub "
                              "does: over a socket, or through a SIM7600 with --modem.")
    pub.add_argument("-t", "--topic", required=True, help="the topic to publish to")
    payload = pub.add_mutually_exclusive_group(required=True)
    payload.add_argument("-m", "--message", help="the payload")
    payload.add_argument("-f", "--file", help="send this file's contents")
    payload.add_argument("-s", "--stdin-file", action="store_true", help="send what stdin holds")
    payload.add_argument("-n", "--null-message", action="store_true", help="send an empty payload")
    pub.add_argument("-r", "--retain", action="store_true", help="the broker retains the message")
    sub = commands.add_parser("sub", parents=[common], add_help=False, help="print messages",
                              description="Subscribe with cellmqtt's MQTT client and print the messages, as "
                              "mosquitto_sub does: over a socket, or through a SIM7600 with --modem.")
    sub.add_argument("-t", "--topic", action="append", required=True, help="a filter (repeatable)")
    sub.add_argument("-C", "--count", type=int, default=0, metavar="N", help="exit after N messages")
    sub.add_argument("-W", "--wait", type=float, metavar="S",
                     help="give up (exit 4) S seconds after subscribing unless -C messages came")
    sub.add_argument("-v", "--verbose", action="store_true", help='print "topic payload"')
    sub.add_argument("-N", "--no-eol", action="store_true", help="no newline after each payload")
    return parser


def _check(args):
    if args.port is None:
        args.port = 8883 if args.tls else 1883
    _check_tls(args)
    if not 0 < args.port < 65536:
        raise UsageError("-p: a port is 1-65535")
    if args.keepalive < 0 or args.keepalive > 65535 or args.timeout <= 0 or args.max_packet < 64:
        raise UsageError("-k 0-65535, --timeout above 0, --max-packet 64 or more")
    if args.disable_clean_session and not args.id:
        raise UsageError("-c needs a client id (-i): the broker keeps the session under it")
    if args.pw is not None and args.username is None:
        raise UsageError("-P needs -u: MQTT 3.1.1 sends no password without a user name")
    if args.control is not None and args.modem is None:
        raise UsageError("--control needs --modem")
    if args.command == "pub" and topic_error(args.topic) is not None:
        raise UsageError("-t %r: %s" % (args.topic, topic_error(args.topic)))
    if args.command == "sub":
        if args.count < 0 or (args.wait is not None and args.wait <= 0):
            raise UsageError("-C 0 or more, -W above 0")
        for topic_filter in args.topic:
            reason = filter_error(topic_filter)
            if reason is not None:
                raise UsageError("-t %r: %s" % (topic_filter, reason))


def _check_tls(args):
    """--tls needs --cafile (verification is never off); --cert and --key go together.
    The files are read here, so a missing one is a usage error."""
    args.tls_files = None
    if not args.tls:
        if args.cafile or args.cert or args.key:
            raise UsageError("--cafile, --cert and --key need --tls")
        return
    if not args.cafile:
        raise UsageError("--tls needs --cafile: the broker's certificate is always verified")
    if (args.cert is None) != (args.key is None):
        raise UsageError("--cert and --key go together")
    files = {}
    for name, path in (("ca", args.cafile), ("cert", args.cert), ("key", args.key)):
        if path is None:
            files[name] = None
            continue
        try:
            with open(path, "rb") as source:
                files[name] = source.read()
        except OSError as error:
            raise UsageError("--%s %s: %s" % ("cafile" if name == "ca" else name, path,
                                              error.strerror or error)) from None
    args.tls_files = files


def _payload(args):
    if args.message is not None:
        return os.fsencode(args.message)
    if args.file is not None:
        try:
            with open(args.file, "rb") as source:
                return source.read()
        except OSError as error:
            raise UsageError("-f %s: %s" % (args.file, error.strerror or error)) from None
    if args.stdin_file:
        return sys.stdin.buffer.read()
    return b""


def _client(args, book):
    will = None
    if args.will_topic is not None:
        will = Will(args.will_topic, os.fsencode(args.will_payload), args.will_qos, args.will_retain)
    client_id = args.id if args.id is not None else "cellmqtt-%s-%d" % (args.command, os.getpid())
    timeout_ms = int(args.timeout * 1000)
    password = None if args.pw is None else os.fsencode(args.pw)
    client = MqttClient(client_id, keepalive_s=args.keepalive, clean_session=not args.disable_clean_session,
                        will=will, username=args.username, password=password, max_packet=args.max_packet,
                        connect_timeout_ms=timeout_ms, ack_timeout_ms=timeout_ms, ledger=book)
    return client_id, client


class _Stop:
    """SIGINT/SIGTERM: the normal end of a sub that is listening; otherwise the work
    is cancelled (and torn down on the way out)."""

    def __init__(self):
        self.event = asyncio.Event()
        self.listening = False


class _Counted:
    """The client's stream, counting finished writes: after the last message (-C) the
    subscriber lets its acknowledgements go out (PUBACK; PUBREC and PUBCOMP) before it
    disconnects, so a persistent session does not get that message again next time."""

    def __init__(self, stream):
        self._stream = stream
        self.writes = 0
        self._event = asyncio.Event()

    async def read(self, max_bytes):
        return await self._stream.read(max_bytes)

    async def write(self, data):
        await self._stream.write(data)
        self.writes += 1
        self._event.set()

    async def close(self):
        await self._stream.close()

    async def written(self, count, timeout_s):
        """Until `count` writes have finished, or timeout_s has passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.writes < count and loop.time() < deadline:
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), deadline - loop.time())
            except asyncio.TimeoutError:
                pass


class _Printer:
    """Prints messages as mosquitto_sub does; one line per message received, even when
    several filters match it (the client calls each matching filter's callback)."""

    def __init__(self, args, out, stream):
        self.filters = args.topic
        self.count = args.count
        self.verbose = args.verbose
        self.eol = b"" if args.no_eol else b"\n"
        self.out = out
        self.stream = stream
        self.received = 0
        self.acked_at = None  # the write count at which the last message is acknowledged
        self.done = asyncio.Event()

    def callback_for(self, topic_filter):
        def callback(topic, payload, qos, retain):
            first = None
            for candidate in self.filters:
                if matches(candidate, topic):
                    first = candidate
                    break
            if first == topic_filter:
                self.emit(topic, payload, qos, retain)

        return callback

    def emit(self, topic, payload, qos, retain):
        if self.done.is_set():
            return
        self.received += 1
        head = topic.encode() + b" " if self.verbose else b""
        try:
            self.out.write(head + payload + self.eol)
            self.out.flush()
        except OSError:  # stdout went away (a closed pipe): nothing more to print to
            self.done.set()
            return
        if self.count and self.received >= self.count:
            self.acked_at = self.stream.writes + qos  # QoS 1: PUBACK; 2: PUBREC, PUBCOMP
            self.done.set()


async def _publish(client, args, log):
    payload = _payload(args)
    await client.publish(args.topic, payload, args.qos, args.retain)
    log("published %d bytes to %s (QoS %d%s)" % (len(payload), args.topic, args.qos,
                                                 ", retained" if args.retain else ""))


async def _subscribe(client, args, log, stream, printer, stop):
    for topic_filter in args.topic:
        granted = await client.subscribe(topic_filter, args.qos, printer.callback_for(topic_filter))
        log("subscribed to %s (granted QoS %d)" % (topic_filter, granted))
    stop.listening = True
    waiters = [asyncio.ensure_future(printer.done.wait()), asyncio.ensure_future(stop.event.wait()),
               asyncio.ensure_future(client.wait_disconnected())]
    try:
        finished, _ = await asyncio.wait(waiters, timeout=args.wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    stop.listening = False
    if not client.connected:
        raise LinkClosed("connection to the broker lost")
    if printer.acked_at is not None:
        await stream.written(printer.acked_at, ACK_LEAVE_S)
    if not finished:
        raise WaitExpired("-W %g s passed with %d message%s received" % (
            args.wait, printer.received, "" if printer.received == 1 else "s"))


async def _run(args, out, log, stop):
    book = Ledger()
    client_id, client = _client(args, book)
    if args.modem is None:
        transport = SocketTransport(args.host, args.port, args.timeout, log, args.tls_files)
    else:
        transport = ModemTransport(args.modem, args.control, args.apn, args.baud, args.host, args.port,
                                   book, log, args.tls_files)
    failed = False
    try:
        stream = _Counted(await transport.open())
        if args.command == "sub":
            printer = _Printer(args, out, stream)
            client.on_message = printer.emit  # a resumed session's backlog comes before SUBACK
        present = await client.connect(stream)
        log("connected as %r (session present: %s)" % (client_id, "yes" if present else "no"))
        try:
            if args.command == "pub":
                await _publish(client, args, log)
            else:
                await _subscribe(client, args, log, stream, printer, stop)
        finally:
            await client.disconnect()
            log("disconnected")
    except BaseException:
        failed = True
        raise
    finally:
        try:
            await transport.close()
        except Exception as error:
            if not failed:
                raise
            log("also: %s" % error)
    if len(book):
        raise Leak("resources still held at exit: %s" % book.entries())


def describe(error):
    """(exit status, one line naming the cause) for a failure."""
    if isinstance(error, MqttRefused):
        return EXIT_REFUSED, "connection refused by broker: %s (code %d)" % (error.name, error.code)
    if isinstance(error, SubscribeFailed):
        return EXIT_SUBSCRIBE, "subscription refused by broker: %s (SUBACK 0x80)" % error.topic_filter
    if isinstance(error, TlsError):
        return EXIT_LINK, "TLS failure: %s%s" % (error.reason, " (%s)" % error.detail if error.detail else "")
    if isinstance(error, (ModemFailure, ModemError)):
        return EXIT_MODEM, "modem failure: %s" % error
    if isinstance(error, Unreachable):
        return EXIT_LINK, str(error)
    if isinstance(error, (WaitExpired, Timeout)):
        return EXIT_TIMEOUT, "timeout: %s" % error
    if isinstance(error, (LinkClosed, OSError)):
        return EXIT_LINK, "link failure: %s" % error
    if isinstance(error, (UsageError, LocalProtocolError, ConfigError)):
        return EXIT_USAGE, "invalid request: %s" % error
    if isinstance(error, (RemoteProtocolError, LimitExceeded)):
        return EXIT_PROTOCOL, "protocol error: %s" % error
    if isinstance(error, Leak):
        return EXIT_LEAK, "internal error: %s" % error
    return EXIT_FAILED, "unexpected error: %s: %s" % (type(error).__name__, error)


async def _main(args, out, log):
    stop = _Stop()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.event.set)
    work = asyncio.ensure_future(_run(args, out, log, stop))
    stopper = asyncio.ensure_future(stop.event.wait())
    try:
        await asyncio.wait([work, stopper], return_when=asyncio.FIRST_COMPLETED)
        if not work.done() and not stop.listening:
            work.cancel()
        try:
            await work
        except asyncio.CancelledError:
            return EXIT_INTERRUPTED, "interrupted"
    finally:
        stopper.cancel()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)
    return EXIT_OK, None


def main(argv=None, out=None):
    parser = _parser()
    args = parser.parse_args(argv)
    out = out or sys.stdout.buffer
    prefix = "mqtt %s: " % args.command

    def log(text):
        if args.debug:
            print(prefix + text, file=sys.stderr, flush=True)

    try:
        _check(args)
        status, message = asyncio.run(_main(args, out, log))
    except Exception as error:
        status, message = describe(error)
        if status == EXIT_FAILED:
            traceback.print_exc()
    if message is not None:
        print(prefix + message, file=sys.stderr, flush=True)
    return status
