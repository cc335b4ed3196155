"""The REPL's bare words `free`, `list_fd` and `netstat`, as boot.py installs them:
each stands in for shell.py's command and loads the shell on first use, so a board
that nobody types at never gives the shell's code any heap.

    from cellmqtt import repl
    repl.install(globals())
"""

NAMES = ("free", "list_fd", "netstat")


class Word:
    """Prints the command's report when named at the REPL, runs it when called, and
    passes anything else (`await netstat.refresh()`) to it."""

    def __init__(self, name):
        self._name = name

    def _command(self):
        from . import shell

        return getattr(shell, self._name)

    def __repr__(self):
        return repr(self._command())

    def __call__(self):
        self._command()()

    def __getattr__(self, name):
        return getattr(self._command(), name)


def install(namespace):
    """Put every word into a namespace (boot.py passes the REPL's globals())."""
    for name in NAMES:
        namespace[name] = Word(name)
