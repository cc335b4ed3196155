"""`collect` and `sim` as child processes, for the tests and the bench: a collector
is ready once subscribed, stops gracefully on SIGTERM (its last line: the figures)
or dies on SIGKILL; the database's readings counted from outside."""

import signal
import subprocess
import sys
import threading
import time

from tools.board_files import ROOT
from tools.services import stop_process

from .db import open_db

READY_S = 20
# what a broker needs to keep a collector's session whole while it is away (mosquitto:
# its default max_queued_messages, 1000, drops the rest)
MOSQUITTO_LINES = ("max_queued_messages 0",)


class CollectorProcess:
    def __init__(self, broker, db, *options):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.fleet", "collect", "--broker", broker, "--db", db] + list(options),
            cwd=ROOT, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self._subscribed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._subscribed.wait(READY_S):
            self.kill()
            raise RuntimeError("the collector did not subscribe within %d s: %s" % (READY_S, self.lines))

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line)
            if "subscribed to" in line:
                self._subscribed.set()

    def stop(self):
        """SIGTERM, the graceful end; returns the messages it took (from its last line)."""
        stop_process(self.process)
        self._thread.join(5)
        if self.process.returncode != 0:
            raise RuntimeError("the collector exited with %s: %s" % (self.process.returncode, self.lines[-5:]))
        return int(self.lines[-1].split("collect: ")[1].split()[0])

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)
        self._thread.join(5)


def run_sim(broker, *options, timeout_s=1800):
    """`python -m tools.fleet sim` to the end; its exit status."""
    return subprocess.run([sys.executable, "-m", "tools.fleet", "sim", "--broker", broker] + list(options),
                          cwd=ROOT, timeout=timeout_s).returncode


def readings(db_target):
    db = open_db(db_target)
    try:
        return db.query("SELECT COUNT(*) FROM readings")[0][0]
    finally:
        db.close()


def wait_for(db_target, count, timeout_s):
    """Until the database holds `count` readings; False if it did not in time."""
    deadline = time.monotonic() + timeout_s
    while readings(db_target) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
