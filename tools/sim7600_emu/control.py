"""The control port: the board's wires and the test bench's knobs, one text line per
request, one line per reply (see the package docstring for the requests)."""

import asyncio
import json

from . import faults
from .uart import TcpServer

MAX_REQUEST = 4096  # a request is a short line; longer is a broken client


def handle(emulator, line):
    """One request line -> one reply line (without the LF)."""
    words = line.split()
    if not words:
        return "ERR empty request"
    verb = words[0].upper()
    modem = emulator.modem
    try:
        if verb == "SET" and len(words) == 3:
            modem.set_pin(_number(words[1]), _level(words[2]))
        elif verb == "GET" and len(words) == 2:
            return str(modem.get_pin(_number(words[1])))
        elif verb == "ADC" and len(words) == 2:
            return str(modem.adc(_number(words[1])))
        elif verb == "POWER" and len(words) == 2 and words[1].upper() in ("ON", "OFF"):
            if words[1].upper() == "ON":
                modem.power_on()
            else:
                modem.power_off()
        elif verb == "RESET" and len(words) == 1:
            emulator.reset()
        elif verb == "FAULT":
            name, params = faults.parse_words(words[1:])
            modem.fault(name, params)
        elif verb == "CLEAR" and len(words) == 1:
            modem.clear_faults()
        elif verb == "QUIRK" and len(words) == 1:
            return " ".join(sorted(modem.quirks)) or "none"
        elif verb == "QUIRK" and len(words) > 2 and words[1].upper() in ("ON", "OFF"):
            modem.set_quirks(words[2:], words[1].upper() == "ON")
        elif verb == "STATE" and len(words) == 1:
            return json.dumps(emulator.state())
        elif verb == "WINDOW" and len(words) == 2:
            record = modem.gate.record(_number(words[1], "a window number"))
            return "PENDING" if record is None else json.dumps(record)
        elif verb == "HOLD" and len(words) == 2 and words[1].upper() in ("ON", "OFF"):
            modem.gate.set_hold(words[1].upper() == "ON")
        elif verb == "GO" and len(words) == 2:
            return "OK" if modem.gate.go(_number(words[1], "a window number")) else "NOT HELD"
        else:
            return "ERR unknown request: %s" % " ".join(words)[:80]
    except ValueError as problem:
        return "ERR %s" % " ".join(str(problem).split())
    return "OK"


def _number(word, what="a GPIO number"):
    try:
        number = int(word)
    except ValueError:
        raise ValueError("not %s: %r" % (what, word)) from None
    if number < 0:
        raise ValueError("not %s: %r" % (what, word))
    return number


def _level(word):
    if word not in ("0", "1"):
        raise ValueError("a level is 0 or 1, not %r" % word)
    return int(word)


class ControlServer(TcpServer):
    """Any number of clients at once; each line is answered before the next is read."""

    limit = MAX_REQUEST

    def __init__(self, emulator):
        super().__init__()
        self.emulator = emulator

    async def session(self, reader, writer):
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                writer.write(b"ERR request longer than %d bytes\n" % MAX_REQUEST)
                return
            if not line:
                return
            reply = handle(self.emulator, line.decode("latin-1"))
            await asyncio.sleep(0)  # what the request set off on the UART (RDY after a press) goes out first
            writer.write(reply.encode("latin-1") + b"\n")
            await writer.drain()
