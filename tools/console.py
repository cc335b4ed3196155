"""Ask a board `free`, `list_fd` or `netstat` without stopping its main.py.

  python -m tools.console PORT WORD [--timeout S]

Writes WORD and Enter to the board's serial device PORT (or the PTY of `make vboard`),
again every 2 s until the board takes it (one still starting main.py drops what comes).
While the duty cycle runs, its console (lib/cellmqtt/repl.py) answers between a `<WORD>`
and a `</WORD>` line; a board at the REPL already answers the bare word before its next
`>>> ` prompt. Prints the answer and exits 0; 1 with the reason when none came within
--timeout seconds (default 10): a board in deep sleep hears nothing between windows,
and firmware older than the console has none (`make free PORT=... INTERRUPT=1` stops
main.py with mpremote and asks at the REPL). Never sends Ctrl-C, and opens the port with
DTR and RTS low, as mpremote does, so that an ESP32's auto-reset circuit stays still.
"""

import argparse
import sys
import time

import serial

WORDS = ("free", "list_fd", "netstat")  # cellmqtt.repl.NAMES
TIMEOUT_S = 10.0
RESEND_S = 2.0  # a board still starting main.py (after a reset) drops what came before: ask again
BAUD = 115200
_PROMPT = ">>> "


def _lines(data):
    return [line.rstrip("\r") for line in data.decode("utf-8", "replace").split("\n")]


def _line_of(lines, marker, echo):
    """The index of marker's line, or None; with echo, the REPL's echo of it counts too,
    also after a prompt that came when the question did (a board just booting)."""
    for index, line in enumerate(lines):
        if line == marker or (echo and line == _PROMPT + marker):
            return index
    return None


def answer_in(data, word):
    """The answer's lines in what the board sent since WORD was written, or None while
    it is not whole: the console's, between its lines, or the REPL's, after its echo of
    the word and before its prompt."""
    lines = _lines(data)
    for start, end in (("<%s>" % word, "</%s>" % word), (word, None)):
        at = _line_of(lines, start, end is None)
        if at is None:
            continue
        for index in range(at + 1, len(lines)):
            if lines[index] == end or (end is None and lines[index].startswith(_PROMPT)):
                return lines[at + 1:index]
    return None


def _heard(data, word):
    """Whether the board took the word: its console began the answer, or its REPL echoed it."""
    lines = _lines(data)
    return _line_of(lines, "<%s>" % word, False) is not None or _line_of(lines, word, True) is not None


def ask(device, word, timeout_s=TIMEOUT_S):
    """The board's answer to WORD as lines; TimeoutError when none came in time."""
    line = serial.Serial(baudrate=BAUD, timeout=0.05)
    line.port = device
    line.dtr = False  # as mpremote: DTR and RTS high would reset an ESP32 or hold it in
    line.rts = False  # its boot loader
    line.open()
    try:
        line.reset_input_buffer()  # what came before the question is not its answer
        data = b""
        now = time.monotonic()
        deadline = now + timeout_s
        ask_at = now
        while now < deadline:
            if now >= ask_at and not _heard(data, word):
                line.write(word.encode() + b"\r")
                ask_at = now + RESEND_S
            data += line.read(4096)
            lines = answer_in(data, word)
            if lines is not None:
                return lines
            now = time.monotonic()
    finally:
        line.close()
    raise TimeoutError("no answer to %s from %s in %g s: a board in deep sleep hears nothing between "
                       "windows, firmware without the console does not answer while main.py runs "
                       "(INTERRUPT=1 stops it and asks at the REPL)" % (word, device, timeout_s))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.console", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", help="the board's serial device, or the virtual board's PTY")
    parser.add_argument("word", choices=WORDS, help="the report to ask for")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, metavar="S",
                        help="seconds to wait for the answer (default %g)" % TIMEOUT_S)
    args = parser.parse_args(argv)
    try:
        lines = ask(args.port, args.word, args.timeout)
    except (TimeoutError, serial.SerialException) as error:
        print("console:", error, file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
