# The console beside the duty cycle (repl.console, repl.beside): its line handling on a
# stand-in for the board's stdin, and what it keeps. The shell loads for each word and
# goes after it: a board that was asked keeps no more heap than before.
import asyncio
import builtins
import sys

from cellmqtt import repl
from cellmqtt.modem import attached
from support import MICROPYTHON, caught, retained_bytes, run

HELP = "console: free, list_fd, netstat (Ctrl-C: the REPL)"


class Keys:
    """What a board's stdin gives a StreamReader: a character at each read, then ""."""

    def __init__(self, text):
        self._text = text
        self._at = 0

    async def read(self, size):
        await asyncio.sleep(0)  # each key a turn of the loop, as the board gives it
        chars = self._text[self._at:self._at + size]
        self._at += size
        return chars


def _printed(text):
    """The lines the console prints for what is typed."""
    out = []
    saved = builtins.print
    builtins.print = lambda *args: out.extend(" ".join(str(a) for a in args).split("\n"))
    try:
        run(repl.console(Keys(text)))
    finally:
        builtins.print = saved
    return out


def test_a_word_is_answered_between_its_lines_with_the_shells_report():
    lines = _printed("free\r")
    assert lines[0] == "<free>" and lines[-1] == "</free>", lines
    assert lines[1].startswith("total memory: ") and lines[4].startswith("largest free block: ")
    assert "cellmqtt.shell" not in sys.modules  # loaded for the word, gone after it


def test_list_fd_leaves_no_module_loaded_behind_it():
    lines = _printed("list_fd\r")
    assert lines[:3] == ["<list_fd>", "fd type    ref owner  detail", "-- ------  --- -----  ------"], lines
    assert "cellmqtt.shell" not in sys.modules and "cellmqtt.ledger_audit" not in sys.modules


def test_each_line_is_answered_once_whatever_ends_it_and_blank_lines_say_nothing():
    lines = _printed(" list_fd \r\n\r\n\nnetstat\n")
    assert [line for line in lines if line.startswith("<")] == ["<list_fd>", "</list_fd>", "<netstat>", "</netstat>"]
    assert lines[1] == "fd type    ref owner  detail"


def test_anything_else_gets_one_line_of_what_the_console_takes():
    assert _printed("help\rFree\r") == [HELP, HELP]
    assert _printed("free" + "x" * 5000 + "\r") == [HELP]  # kept to 16 characters


def test_a_line_not_ended_is_not_answered_and_the_end_of_input_ends_the_console():
    assert _printed("free") == []


class _Broken:
    @property
    def ip(self):  # the first the netstat rows read
        raise ValueError("no table")


def test_a_word_that_fails_says_so_and_the_console_answers_the_next():
    attached[0] = _Broken()
    try:
        lines = _printed("netstat\rfree\r")
    finally:
        attached[0] = None
    assert lines[:3] == ["<netstat>", repr(ValueError("no table")), "</netstat>"]
    assert lines[3] == "<free>" and lines[-1] == "</free>"


def test_answering_keeps_nothing():
    if not MICROPYTHON:  # CPython re-imports the shell as a new module each time: not a board's heap
        return
    saved = builtins.print
    builtins.print = lambda *args: None
    try:
        retained = retained_bytes(lambda: run(repl.console(Keys("free\rlist_fd\rnetstat\rhelp\r"))), 20)
    finally:
        builtins.print = saved
    assert retained == 0, retained


async def _job(result):
    await asyncio.sleep(0)
    if isinstance(result, Exception):
        raise result
    return result


def test_beside_gives_the_jobs_result_or_error_and_the_console_ends_with_it():
    assert run(repl.beside(_job(42))) == 42
    run(caught(repl.beside(_job(OSError(5, "flash"))), OSError))
