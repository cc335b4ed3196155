"""The virtual board as a subprocess, for tests and scripts."""

import os
import select
import subprocess
import sys
import tempfile
import time

from tools.board_files import ROOT

_STOP_TIMEOUT_S = 6  # the board gives its child 2 s to stop


class VboardProcess:
    """`python -m tools.vboard` as a subprocess, for tests and scripts: waits (bounded) for
    its PTY line, keeps its log in a file, and is stopped by PID. folder None: the flash
    the virtual board makes (self.folder, from its FOLDER line)."""

    def __init__(self, folder, args=(), env=None, start_timeout_s=10):
        self.folder = folder
        log_fd, self.log_path = tempfile.mkstemp(prefix="vboard-", suffix=".log")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.vboard"] + (["--folder", folder] if folder else []) + list(args),
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log_fd)
        os.close(log_fd)
        try:
            self.device = self._read_device(start_timeout_s)
        except RuntimeError:
            self.stop()
            raise

    def _read_device(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        out = b""
        while time.monotonic() < deadline:
            for line in out.splitlines(True):
                if line.startswith(b"FOLDER ") and line.endswith(b"\n"):
                    self.folder = line[7:].strip().decode()
                if line.startswith(b"PTY ") and line.endswith(b"\n"):
                    return line[4:].strip().decode()
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
        raise RuntimeError("the virtual board printed no PTY line: %r %s" % (out, self.log()))

    def log(self):
        with open(self.log_path) as log:
            return log.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        if os.path.exists(self.log_path):
            os.remove(self.log_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
