"""The REPL's bare words `free`, `list_fd` and `netstat`, as boot.py installs them,
and the console that answers them while the duty cycle runs (app.main): each loads
shell.py when used, so a board that nobody asks never gives the shell's code any heap.

    from cellmqtt import repl
    repl.install(globals())
"""

import asyncio
import sys

from . import unload

NAMES = ("free", "list_fd", "netstat")


class Word:
    """Prints the command's report when named at the REPL, runs it when called, and
    passes anything else (`await netstat.refresh()`) to it."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, name):
        from . import shell

        return getattr(getattr(shell, self._name), name)

    # special methods are looked up on the class, never through __getattr__: asked here
    def __repr__(self):
        return self.__getattr__("__repr__")()

    def __call__(self):
        self.__getattr__("__call__")()


def install(namespace):
    """Put every word into a namespace (boot.py passes the REPL's globals())."""
    for name in NAMES:
        namespace[name] = Word(name)


async def console(reader):
    """Answers each line that reader (`await read(1)`) gives, until it ends: a word's
    report between `<word>` and `</word>` lines (the end tells tools/console.py it has
    it all), to anything else what the console takes. One character at a time: a
    board's stdin blocks in read() until it has them all."""
    line = ""
    while True:
        char = await reader.read(1)
        if not char:
            return
        if char not in "\r\n":
            line = (line + char)[:16]  # bounded: every word is shorter
            continue
        word = line.strip()
        line = ""
        if word in NAMES:
            print("<%s>" % word)
            try:
                Word(word)()
            except Exception as error:  # said, and the console and the duty cycle go on
                print(repr(error))
            unload("cellmqtt.shell")  # its heap is free again until the next word
            print("</%s>" % word)
        elif word:
            print("console: %s (Ctrl-C: the REPL)" % ", ".join(NAMES))


async def beside(job):
    """Awaits job (the duty cycle) with the console on the board's stdin beside it,
    ended with it; alone where asyncio cannot read stdin."""
    try:
        reader = asyncio.StreamReader(sys.stdin)
    except Exception:  # CPython's StreamReader takes no stream; the webassembly port has none
        return await job
    task = asyncio.create_task(console(reader))
    try:
        return await job
    finally:
        task.cancel()
        try:
            await task
        except BaseException:  # cancelled, or ended before: the console's end, not the job's
            pass

