# A SIM7600 with a broker behind it, in-process, for the window figure of
# tools/footprint.py. Its UART side answers the AT commands of an upload window as a
# SIM7600 does (reference/sim7600.md: echo until ATE0, boot URCs after a PWRKEY press,
# manual receive), its pins are PWRKEY and STATUS, and link 0's far end is a broker
# that answers CONNECT, SUBSCRIBE, PUBLISH (QoS 1) and PINGREQ. Its buffers are made
# with it, before the figure's baseline: the figure holds what the window allocates.
#
# Every UART read and write also reads the live heap: gc.collect(), then
# gc.mem_alloc(); `peak` is the highest reading, `samples` how many were taken.
import asyncio
import gc

import machine

try:  # the webassembly port: gc.collect() only asks, and the collection runs when the
    # call from JS returns (no stack to scan then): a reading waits for one turn of its loop
    import js
    from asyncio.core import _run_iter
    from jsffi import create_proxy
except ImportError:
    js = None

_OK = b"\r\nOK\r\n"
_ERROR = b"\r\nERROR\r\n"
_BOOT = b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n"
_ANSWERS = (  # command -> its answer before OK
    (b"AT", b""), (b"ATE0", b""), (b"AT+CMEE=1", b""), (b"AT+CPIN?", b"\r\n+CPIN: READY\r\n"),
    (b"AT+CSQ", b"\r\n+CSQ: 20,99\r\n"), (b"AT+CIPRXGET=1", b""),
    (b"AT+IPADDR", b"\r\n+IPADDR: 10.71.155.118\r\n"), (b"AT+CTZU=1", b""),
    (b"AT+CCLK?", b'\r\n+CCLK: "26/12/06,15:00:00+00"\r\n'),
)
_REGISTRATION = (b"AT+CREG", b"AT+CGREG", b"AT+CEREG")  # registered at home on every one
_SETTINGS = (b"AT+CTZU", b"AT+CGDCONT", b"AT+CIPRXGET")  # what the bring-up line sets besides reports
_MQTT_CONNECT, _MQTT_PUBLISH, _MQTT_PUBACK, _MQTT_SUBSCRIBE, _MQTT_PINGREQ, _MQTT_DISCONNECT = 1, 3, 4, 8, 12, 14


class Modem:
    def __init__(self, pwrkey, status):
        self.pwrkey = pwrkey
        self.status = status
        self.on = False
        self.peak = 0
        self.samples = 0
        self.readings = 0  # readings (objects with a "seq") in what the broker acknowledged
        self.unknown = []  # commands it has no answer for (each answered ERROR)
        self._echo = True
        self._closed = True
        self._ready = asyncio.Event()
        # A turn of JS's loop through one callback made here: awaiting a JS promise instead
        # leaves two callbacks and their objects per reading until JS's own collection
        self._turned = asyncio.Event()
        self._turn = None if js is None else create_proxy(self._end_turn)
        self._out = bytearray(2048)  # to the host, not read yet: _out[_head:_tail]
        self._head = 0
        self._tail = 0
        self._line = bytearray(256)  # the command line being received
        self._line_len = 0
        self._data_left = 0  # bytes still owed after a CIPSEND prompt
        self._sent_len = 0  # bytes of that send received so far
        self._mqtt = bytearray(2048)  # from the device, not a whole packet yet
        self._mqtt_len = 0
        self._link = bytearray(256)  # from the broker, for AT+CIPRXGET=2
        self._link_len = 0
        machine.wire(pwrkey, self)
        machine.wire(status, self)

    # what the window calls it through: port.open_uart and the pins

    async def open_uart(self, uart_config):
        self._closed = False
        return self

    def drive(self, number, level):
        if number == self.pwrkey and level == 0 and not self.on:  # the press ends: it boots
            self.on = True
            self._echo = True
            self._send(_BOOT)

    def level(self, number):
        return 1 if number == self.status and self.on else 0

    async def run(self, cycle):
        """main.py's duty cycle, until it puts the board into deep sleep."""
        try:
            await cycle
        except machine.DeepSleep:
            pass

    # the UART, as the host sees it

    async def read(self, max_bytes):
        while self._head == self._tail:
            if self._closed:
                return b""
            self._ready.clear()
            await self._ready.wait()
        n = min(max_bytes, self._tail - self._head)
        data = bytes(memoryview(self._out)[self._head:self._head + n])
        self._head += n
        await self._measure()
        return data

    async def write(self, data):
        if self._closed:
            raise OSError(9, "UART closed")
        await self._measure()
        if not self.on:
            return  # an unpowered modem hears nothing
        view = memoryview(data)
        i = 0
        while i < len(view):
            if self._data_left:
                n = min(self._data_left, len(view) - i)
                self._to_broker(view[i:i + n])
                self._data_left -= n
                i += n
                if not self._data_left:
                    self._sent()
                continue
            byte = view[i]
            i += 1
            if byte == 13:
                self._command(bytes(memoryview(self._line)[:self._line_len]))
                self._line_len = 0
            elif byte != 10:
                self._line[self._line_len] = byte
                self._line_len += 1

    async def close(self):
        self._closed = True
        self._ready.set()

    async def _measure(self):
        gc.collect()
        if self._turn is not None:
            self._turned.clear()
            js.setTimeout(self._turn, 0)
            await self._turned.wait()
        used = gc.mem_alloc()
        self.samples += 1
        if used > self.peak:
            self.peak = used

    def _end_turn(self):
        self._turned.set()
        _run_iter()  # the loop runs the reading's task on

    def _send(self, data):
        if self._tail + len(data) > len(self._out):
            remaining = self._tail - self._head
            self._out[:remaining] = self._out[self._head:self._tail]
            self._head = 0
            self._tail = remaining
        self._out[self._tail:self._tail + len(data)] = data
        self._tail += len(data)
        self._ready.set()

    # the modem

    def _command(self, line):
        if self._echo:
            self._send(line + b"\r")
        if line.startswith(b"ATE0+"):
            self._settings_line(line)
            return
        for command, answer in _ANSWERS:
            if line == command:
                if line == b"ATE0":
                    self._echo = False
                self._send(answer + _OK)
                return
        name, _, arguments = line.partition(b"=")
        fields = arguments.split(b",")
        if line[:-1] in _REGISTRATION and line[-1:] == b"?":
            self._send(b"\r\n" + line[2:-1] + b": 0,1\r\n" + _OK)
        elif name in _REGISTRATION or name == b"AT+CGDCONT":
            self._send(_OK)
        elif line == b"AT+NETOPEN":
            self._send(_OK + b"\r\n+NETOPEN: 0\r\n")
        elif line == b"AT+NETCLOSE":
            self._send(_OK + b"\r\n+NETCLOSE: 0\r\n")
        elif name == b"AT+CIPOPEN" and fields[0] == b"0":
            self._mqtt_len = self._link_len = 0
            self._send(_OK + b"\r\n+CIPOPEN: 0,0\r\n")
        elif name == b"AT+CIPCLOSE" and fields[0] == b"0":
            self._send(_OK + b"\r\n+CIPCLOSE: 0,0\r\n")
        elif name == b"AT+CIPSEND" and fields[0] == b"0" and 0 < int(fields[1]) <= 1500:
            self._data_left = int(fields[1])
            self._send(b"\r\n>")
        elif name == b"AT+CIPRXGET" and fields[0] == b"2" and fields[1] == b"0":
            self._receive(int(fields[2]))
        elif line == b"AT+CPOF":
            self._send(_OK)
            self.on = False
        else:
            self.unknown.append(line)
            self._send(_ERROR)

    def _settings_line(self, line):
        """The driver's bring-up line, `ATE0+CTZU=1;+CEREG=1;...;+CEREG?;+CGREG?` (V.250
        concatenation): echo off, settings, the registration queries' answers, one OK."""
        answer = b""
        for part in line[4:].split(b";"):
            name = b"AT" + part.partition(b"=")[0]
            if name[:-1] in _REGISTRATION and name[-1:] == b"?":
                answer += b"\r\n" + part[:-1] + b": 0,1\r\n"
            elif name not in _REGISTRATION + _SETTINGS:
                self.unknown.append(line)
                self._send(_ERROR)
                return
        self._echo = False
        self._send(answer + _OK)

    def _sent(self):
        self._send(_OK + b"\r\n+CIPSEND: 0,%d,%d\r\n" % (self._sent_len, self._sent_len))
        self._sent_len = 0
        had = self._link_len
        self._serve()
        if self._link_len and not had:
            self._send(b"\r\n+CIPRXGET: 1,0\r\n")

    def _receive(self, size):
        n = min(size, self._link_len)
        if not n:
            self._send(b"\r\n+IP ERROR: No data\r\n" + _ERROR)
            return
        rest = self._link_len - n
        self._send(b"\r\n+CIPRXGET: 2,0,%d,%d\r\n" % (n, rest))
        self._send(memoryview(self._link)[:n])
        self._send(_OK)
        self._link[:rest] = self._link[n:self._link_len]
        self._link_len = rest

    # the broker

    def _to_broker(self, data):
        self._mqtt[self._mqtt_len:self._mqtt_len + len(data)] = data
        self._mqtt_len += len(data)
        self._sent_len += len(data)

    def _serve(self):
        """Answer each whole packet received; keep a partial one."""
        buf = self._mqtt
        while self._mqtt_len >= 2:
            length = shift = 0
            i = 1
            while True:
                if i >= self._mqtt_len:
                    return
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
                if not byte & 0x80:
                    break
            end = i + length
            if end > self._mqtt_len:
                return
            self._answer(buf[0] >> 4, buf[0], i, end)
            buf[:self._mqtt_len - end] = buf[end:self._mqtt_len]
            self._mqtt_len -= end

    def _answer(self, kind, flags, body, end):
        buf = self._mqtt
        if kind == _MQTT_CONNECT:
            self._reply(b"\x20\x02\x00\x00")  # accepted, no session kept: the device subscribes
        elif kind == _MQTT_PUBLISH:
            if (flags >> 1) & 3 != 1:
                raise ValueError("the stand-in broker takes QoS 1 only")
            at = body + 2 + (buf[body] << 8 | buf[body + 1])
            self.readings += bytes(buf[at + 2:end]).count(b'"seq"')
            self._reply(b"\x40\x02" + bytes(buf[at:at + 2]))
        elif kind == _MQTT_SUBSCRIBE:
            self._reply(b"\x90\x03" + bytes(buf[body:body + 2]) + b"\x01")
        elif kind == _MQTT_PINGREQ:
            self._reply(b"\xd0\x00")
        elif kind != _MQTT_DISCONNECT and kind != _MQTT_PUBACK:
            raise ValueError("the stand-in broker got packet type %d" % kind)

    def _reply(self, packet):
        self._link[self._link_len:self._link_len + len(packet)] = packet
        self._link_len += len(packet)
