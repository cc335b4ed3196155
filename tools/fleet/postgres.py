"""A throwaway PostgreSQL server for tests and the bench, as tools/services.py runs
mosquitto: a new cluster in a temporary folder, on a free loopback port, trust
authentication, stopped by PID. Debian's `postgresql` package provides the binaries
(make deps); initdb and postgres refuse to run as root, so as root they run as the
package's `postgres` user (set by Popen itself: the PID is the server's)."""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from tools.services import LOOPBACK, free_port, stop_process

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
_BINARIES = "/usr/lib/postgresql/*/bin"
_USER = "postgres"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _bin_dir():
    found = sorted(glob.glob(_BINARIES), key=lambda path: int(path.split("/")[-2].split(".")[0]))
    for folder in reversed(found):
        if os.path.exists(os.path.join(folder, "postgres")):
            return folder
    raise PostgresMissing("PostgreSQL is not installed (no %s/postgres): make deps, or "
                          "apt-get install postgresql" % _BINARIES)


class Postgres:
    def __init__(self):
        self.bin = _bin_dir()
        self.folder = tempfile.mkdtemp(prefix="postgres-")
        self.data = os.path.join(self.folder, "data")
        self.port = free_port()
        self.url = "postgresql://%s@%s:%d/postgres" % (_USER, LOOPBACK, self.port)
        self.process = None
        self._as_user = {"cwd": self.folder}
        if os.geteuid() == 0:
            user = pwd.getpwnam(_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as_user.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])

    def _command(self, name, *arguments):
        return [os.path.join(self.bin, name)] + list(arguments)

    def start(self):
        try:
            subprocess.run(self._command("initdb", "-D", self.data, "-U", _USER, "--auth=trust", "-E", "UTF8",
                                         "--no-sync"), check=True, capture_output=True, timeout=START_TIMEOUT_S,
                           **self._as_user)
            log = open(os.path.join(self.folder, "log"), "w")
            with log:
                # the socket in our folder, TCP on loopback only; fsync stays on (kill tests)
                self.process = subprocess.Popen(
                    self._command("postgres", "-D", self.data, "-p", str(self.port), "-h", LOOPBACK,
                                  "-k", self.folder, "-c", "max_connections=50"),
                    stdout=log, stderr=subprocess.STDOUT, **self._as_user)
            self._wait_ready()
        except BaseException as error:
            said = getattr(error, "stderr", b"") or b""
            self.stop()
            if isinstance(error, (subprocess.SubprocessError, OSError)):
                raise RuntimeError("PostgreSQL did not start: %s %s" % (error, said.decode(errors="replace")[-400:]))
            raise
        return self

    def _wait_ready(self):
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("postgres exited with %d: %s" % (self.process.returncode, self._log_tail()))
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError("postgres not ready after %d s: %s" % (START_TIMEOUT_S, self._log_tail()))
                time.sleep(0.1)

    def _log_tail(self):
        try:
            with open(os.path.join(self.folder, "log")) as log:
                return log.read()[-600:]
        except OSError:
            return ""

    def stop(self):
        """Fast shutdown (SIGINT: sessions ended, data written), by PID; SIGKILL if it
        does not end in time."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, signal.SIGINT, STOP_TIMEOUT_S)
        shutil.rmtree(self.folder, ignore_errors=True)
