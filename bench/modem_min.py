"""The lowest modem cost of one upload window that the SIM7600 manual allows, run for
real against the emulator so its accounting and latency model measure it as they
measure ours: PWRKEY, RDY; AT+CGDCONT (the APN), AT+CEREG=1 and its registration URC;
AT+NETOPEN; AT+CIPOPEN; the MQTT session in as few AT+CIPSEND as 1500-byte chunks
allow (MQTT 3.1.1 lets a client send before CONNACK [MQTT-3.1.4-5], so CONNECT,
SUBSCRIBE and the publishes go out together; the downlink's PUBACKs and DISCONNECT
together after it arrived); the broker closes the link on DISCONNECT (+IPCLOSE), so
no AT+CIPCLOSE is needed; AT+CPOF and STATUS low. Every command waits for its final
result (OK, then its URC) before the next. Defaults stay as they are:
echo on, push receive (RECV FROM / +IPD), so nothing costs a command of its own."""

import socket
import time

from cellmqtt.mqtt import packets as p
from cellmqtt.mqtt.packets import Decoder
from cellmqtt.mqtt.server_codec import encode

MAX_SEND = 1500  # AT+CIPSEND takes 1-1500 bytes
PRESS_MS = 150  # PWRKEY >= 100 ms starts the module (HD 3.2), with a margin
REGISTER_WAIT_MS = 5000  # model ms: the emulator registers 2 s after boot
_WAIT_S = 60  # model boot 12 s + shutdown 5 s at time scale 1, with room


def mqtt_session(work, downlinks=2):
    """(bytes before the downlink, a function of the downlink packets -> bytes after)."""
    first = [p.Connect(work.client_id, True, work.keepalive_s), p.Subscribe(1, [(work.down, work.qos)])]
    first += [p.Publish(work.up, payload, work.qos, False, False, (2 + index) if work.qos else None)
              for index, payload in enumerate(work.payloads)]

    def closing(received):
        acks = [p.Bare(p.PUBACK, packet.packet_id) for packet in received
                if packet.TYPE == p.PUBLISH and packet.qos == 1]
        return _bytes(acks + [p.DISCONNECT_PACKET])

    return _bytes(first), closing


def _bytes(packets):
    return b"".join(bytes(piece) for packet in packets for piece in encode(packet))


class Uart:
    """The emulator's UART: command lines out; lines, the `>` prompt and pushed data in."""

    def __init__(self, address, wait_s):
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=wait_s)
        self.wait_s = wait_s
        self.buf = b""
        self.data = b""  # pushed link data (+IPD) not yet taken
        self.seen = []  # every line so far: a URC may come before the one awaited

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _item(self):
        """The next line (bytes), b">" for the prompt, or None when more must arrive;
        pushed data goes to self.data."""
        buf = self.buf.lstrip(b"\r\n")
        if buf.startswith(b">"):
            self.buf = buf[1:]
            return b">"
        end = buf.find(b"\r")
        if end < 0:
            self.buf = buf
            return None
        line = buf[:end]
        rest = buf[end + 1:]
        if rest.startswith(b"\n"):
            rest = rest[1:]
        if line.startswith(b"+IPD"):
            size = int(line[4:])
            if len(rest) < size:
                self.buf = buf
                return None
            self.data += rest[:size]
            rest = rest[size:]
            line = b""
        self.buf = rest
        return line

    def pump(self):
        """The next line or prompt (b"" after pushed data), reading as needed."""
        while True:
            item = self._item()
            if item is not None:
                if item:
                    self.seen.append(item)
                return item
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the emulator closed the UART")
            self.buf += chunk

    def until(self, wanted):
        """Read until a line (or the prompt) for which wanted(line) holds."""
        while True:
            item = self.pump()
            if item and wanted(item):
                return item

    def command(self, line, result=None):
        """Send one command; wait for OK (and for the URC starting with result)."""
        self.send(line.encode() + b"\r")
        answer = self.until(lambda item: item in (b"OK", b"ERROR") or item.startswith(b"+CME ERROR"))
        if answer != b"OK":
            raise RuntimeError("%s answered %r" % (line, answer))
        if result is not None:
            self.until(lambda item: item.startswith(result.encode()))

    def cipsend(self, data):
        for start in range(0, len(data), MAX_SEND):
            chunk = data[start:start + MAX_SEND]
            self.send(b"AT+CIPSEND=0,%d\r" % len(chunk))
            self.until(lambda item: item == b">")
            self.send(chunk)
            self.until(lambda item: item == b"OK")
            self.until(lambda item: item.startswith(b"+CIPSEND: 0,%d,%d" % (len(chunk), len(chunk))))


def run_window(emulator, broker, work, apn="internet", time_scale=1.0):
    """One minimal window; the emulator must be off with its accounting reset.
    Returns the MQTT packets received (to check the session did its work)."""
    host, _, port = broker.rpartition(":")
    wait_s = _WAIT_S * max(time_scale, 0.01)
    uart = Uart(emulator.uart, wait_s)
    try:
        emulator.ask("SET 4 1")
        time.sleep(PRESS_MS * time_scale / 1000)
        emulator.ask("SET 4 0")
        uart.until(lambda item: item == b"RDY")
        uart.command('AT+CGDCONT=1,"IP","%s"' % apn)
        uart.command("AT+CEREG=1")
        _registered(uart, REGISTER_WAIT_MS * time_scale / 1000)
        uart.command("AT+NETOPEN", "+NETOPEN: 0")
        uart.command('AT+CIPOPEN=0,"TCP","%s",%s' % (host, port), "+CIPOPEN: 0,0")
        before, closing = mqtt_session(work)
        uart.cipsend(before)
        received = _receive(uart, work)
        uart.cipsend(closing(received))
        if not any(line.startswith(b"+IPCLOSE: 0,") for line in uart.seen):
            uart.until(lambda item: item.startswith(b"+IPCLOSE: 0,"))  # the broker's close
        uart.command("AT+CPOF")
        deadline = time.monotonic() + wait_s
        while emulator.ask("GET 34") != "0":
            if time.monotonic() > deadline:
                raise TimeoutError("STATUS still high after AT+CPOF")
            time.sleep(0.01)
    finally:
        uart.close()
    return received


def _registered(uart, wait_s):
    """The +CEREG URC of the registration; a modem that registered before AT+CEREG=1
    sends none, so after wait_s one AT+CEREG? asks (and counts as a command)."""
    registered = (b"+CEREG: 1", b"+CEREG: 5")
    if any(line in registered for line in uart.seen):
        return
    uart.sock.settimeout(wait_s)
    try:
        uart.until(lambda item: item in registered)
        return
    except socket.timeout:
        pass
    finally:
        uart.sock.settimeout(uart.wait_s)
    uart.send(b"AT+CEREG?\r")
    answer = uart.until(lambda item: item.startswith(b"+CEREG: "))
    if answer.split(b",")[-1] not in (b"1", b"5"):
        raise RuntimeError("not registered: %r" % answer)
    uart.until(lambda item: item == b"OK")


def _receive(uart, work):
    """Decode pushed bytes until CONNACK, SUBACK, the PUBACKs and the downlink are in."""
    decoder = Decoder()
    received = []
    need = {p.CONNACK: 1, p.SUBACK: 1, p.PUBACK: len(work.payloads) if work.qos else 0,
            p.PUBLISH: work.downlinks}
    while any(received_count(received, kind) < count for kind, count in need.items()):
        while not uart.data:
            uart.pump()
        decoder.feed(uart.data)
        uart.data = b""
        while True:
            packet = decoder.next_packet()
            if packet is None:
                break
            if packet.TYPE == p.PUBLISH:
                packet = p.Publish(packet.topic, bytes(packet.payload), packet.qos, False, False, packet.packet_id)
            received.append(packet)
    return received


def received_count(received, kind):
    return sum(1 for packet in received if packet.TYPE == kind)
