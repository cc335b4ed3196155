"""A virtual board: the MicroPython unix port behind a pseudo-terminal, speaking the REPL
as an ESP32 does over USB serial, so mpremote works against it unchanged.

  python -m tools.vboard [--folder DIR | --from-source] [--heap 256K] [--modem HOST:PORT]
                         [--control HOST:PORT] [--device-id HEX] [--interrupt-timeout S]

Prints `FOLDER <dir>` (the board's flash) and `PTY /dev/pts/N` (the device for mpremote),
then serves until SIGTERM or SIGINT.
- Flash: --folder DIR is used as it is. Without it a new folder starts with the library
  in /lib as `make deploy` ships it to a board running the unix port: the .mpy files
  (tools/mpy_build.py) with the PC-only modules; --from-source puts lib/*.py there
  instead (as `mpremote mip install` does), for debugging.
- Power-on: the unix port starts with the folder mounted as / and sys.path
  ['', '/lib', '.frozen'], runs /boot.py, then /main.py, then the friendly REPL.
- Friendly REPL, raw REPL (Ctrl-A/Ctrl-B/Ctrl-D), raw-paste and paste mode are the unix
  port's own.
- Soft reset (Ctrl-D on an empty line, sys.exit(), machine.soft_reset()): the process
  exits and is started again after `MPY: soft reboot`; files persist. From the raw REPL it
  comes back in the raw REPL and skips main.py, as a board does (that is how mpremote
  regains a board whose main.py never ends).
- Ctrl-C while code runs becomes SIGINT for the process (a raw line does not make one);
  at a prompt it stays a byte. A process not back at a prompt within the interrupt
  timeout is restarted.
- Input reaches main.py while it runs (the console of cellmqtt's repl.py reads it), as
  a board's stdin does; after a Ctrl-C it waits for the REPL, for which it is meant.
- Exit code 75 (cellmqtt.port.reset() on a PC) or a crash is a hard reset: the friendly
  REPL, boot.py and main.py again.
The modem UART and pins reach the SIM7600 emulator through CELLMQTT_MODEM,
CELLMQTT_CONTROL and CELLMQTT_DEVICE_ID, from this process's environment or the flags.
"""

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import tty

from tools import mpy_build
from tools.board_files import LIB, ROOT

MICROPYTHON = os.path.join(ROOT, ".venv-micropython", "bin", "micropython")
RESET_EXIT_CODE = 75  # cellmqtt.port._pc.RESET_EXIT_CODE: what port.reset() exits with
DEFAULT_HEAP = "256K"
INTERRUPT_TIMEOUT_S = 3.0
FRIENDLY, RAW = "friendly", "raw"
_POLL_MS = 50
# Bounded like a UART's buffers: output to a slow host, input to a busy board.
_TO_HOST_LIMIT = 256 * 1024
_TO_CHILD_LIMIT = 64 * 1024
_READ_SIZE = 65536
_STOP_TIMEOUT_S = 2
_TAIL = 64  # output kept to spot banners and prompts split across reads
# Printed by the start-up script and never passed on. Before _UP a SIGINT would kill the
# process as it starts; from _UP to the byte that answers _READY the script catches it.
_UP = b"\x00vboard-up\x00"
_READY = b"\x00vboard-ready\x00"
_GO = b"\x00"
_RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
_FRIENDLY_BANNER = b'Type "help()" for more information.'
_FRIENDLY_PROMPT = b">>> "
_SOFT_REBOOT = b"MPY: soft reboot\r\n"
_CTRL_A = b"\x01"
_CTRL_C = b"\x03"
_LONE_LF = re.compile(rb"(?<!\r)\n")
# A child's life: started, running boot.py and main.py, printing its banner, at the REPL.
STARTING, SCRIPTS, BANNER, REPL = "starting", "scripts", "banner", "repl"

# Runs in the unix port at every start, inside a function so that its names stay out of
# the REPL's namespace, which boot.py and main.py share with it, as on a board. It waits
# for _GO after _READY so that it cannot end while a SIGINT is on its way (a SIGINT that
# lands after _GO was read must not make it wait again: hence the flag byte). Input that
# main.py left unread comes before _GO, and goes.
_STARTUP = """\
def _vboard_boot(folder, run_main):
    import os, sys, vfs
    vfs.umount('/')
    vfs.mount(vfs.VfsPosix(folder), '/')
    clock = os.getenv('CELLMQTT_CLOCK')
    if clock:  # the RTC's file, outside the flash as a board's RTC is
        place, _, name = clock.rpartition('/')
        vfs.mount(vfs.VfsPosix(place), '/.rtc')
        os.putenv('CELLMQTT_CLOCK', '/.rtc/' + name)
    os.chdir('/')
    sys.path[:] = ['', '/lib', '.frozen']
    def run(name):
        try:
            source = open(name).read()
        except OSError:
            return True
        try:
            exec(compile(source, name, 'exec'), globals())
        except KeyboardInterrupt as error:
            sys.print_exception(error)
            return False
        except Exception as error:
            sys.print_exception(error)
        return True
    try:
        print(%r, end='')
        if run('boot.py') and run_main:
            run('main.py')
    except KeyboardInterrupt as error:
        sys.print_exception(error)
    print(%r, end='')
    go = bytearray(b'\\x01')
    while go[0]:
        try:
            sys.stdin.buffer.readinto(go)
        except KeyboardInterrupt:
            pass
_vboard_boot(%r, %r)
del _vboard_boot
"""


def sigint_handled(pid):
    """Whether pid has a SIGINT handler: the unix port installs one only while it runs
    code, and at a prompt SIGINT would kill it."""
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)
    except OSError:
        pass
    return False


def split_partial(data, marker):
    """(data that cannot start marker, a tail that may be its beginning)."""
    for size in range(min(len(marker) - 1, len(data)), 0, -1):
        if data.endswith(marker[:size]):
            return data[:-size], data[-size:]
    return data, b""


def install_library(folder, from_source=False):
    """cellmqtt into the flash's /lib: the .mpy files, or with from_source lib/*.py."""
    if from_source:
        shutil.copytree(os.path.join(LIB, "cellmqtt"), os.path.join(folder, "lib", "cellmqtt"),
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:
        mpy_build.build_for_pc(folder)


def _stderr_log(message):
    print("vboard:", message, file=sys.stderr, flush=True)


class VirtualBoard:
    """One virtual board: a pty for the host, and the unix port as a child process."""

    def __init__(self, folder, heap=DEFAULT_HEAP, env=None, micropython=MICROPYTHON,
                 interrupt_timeout_s=INTERRUPT_TIMEOUT_S, log=_stderr_log):
        self.folder = os.path.abspath(folder)
        self.heap = heap
        self.env = dict(os.environ, **(env or {}))
        self.micropython = micropython
        self.interrupt_timeout_s = interrupt_timeout_s
        self.log = log
        self.mode = FRIENDLY
        self.stopping = False
        self._master, slave = os.openpty()
        tty.setraw(slave)
        self.device = os.ttyname(slave)
        # Nobody holds the slave while no host is connected: the master then reports
        # POLLHUP, and output is dropped as a board's serial line drops it.
        os.close(slave)
        os.set_blocking(self._master, False)
        self._child = None
        self._to_host = bytearray()
        self._to_child = bytearray()
        self._tail = b""
        self._last = b""
        self._phase = STARTING
        self._interrupt_pending = False
        self._main = False  # whether main.py runs in this child
        self._interrupted = False  # since the start: input waits for the REPL
        self._pending = b""
        self._banner = b""
        self._interrupt_deadline = None

    def serve(self):
        """Run until self.stopping is set (by a signal handler or another thread)."""
        self._start(run_main=True)
        try:
            while not self.stopping:
                self._step()
        finally:
            self._stop_child()
            os.close(self._master)

    def _step(self):
        connected = self._host_connected()
        if not connected:
            self._to_host.clear()
        child_out = self._child.stdout.fileno()
        child_in = self._child.stdin.fileno()
        poller = select.poll()
        if connected:
            poller.register(self._master, select.POLLIN | (select.POLLOUT if self._to_host else 0))
        poller.register(child_out, select.POLLIN)
        if self._to_child and self._takes_input():
            poller.register(child_in, select.POLLOUT)
        for fd, events in poller.poll(_POLL_MS):
            if fd == child_out and self._read_child():
                return  # a new child: the other descriptors are gone
            if fd == self._master and events & select.POLLIN:
                self._read_host()
            if fd == self._master and events & select.POLLOUT:
                self._flush_host()
            if fd == child_in:
                self._flush_child()
        self._check_interrupt()

    def _takes_input(self):
        """Whether the child reads input now; until then it waits, as in a UART buffer."""
        return self._phase == REPL or (self._phase == SCRIPTS and self._main and not self._interrupted)

    def _host_connected(self):
        probe = select.poll()
        probe.register(self._master, 0)
        return not any(events & select.POLLHUP for _, events in probe.poll(0))

    # From the host

    def _read_host(self):
        try:
            data = os.read(self._master, _READ_SIZE)
        except OSError:  # EAGAIN, or EIO as the host hangs up
            return
        start = 0
        while True:
            index = data.find(_CTRL_C, start)
            if index < 0:
                self._queue(self._to_child, data[start:], _TO_CHILD_LIMIT, "input")
                return
            self._queue(self._to_child, data[start:index], _TO_CHILD_LIMIT, "input")
            self._ctrl_c()
            start = index + 1

    def _ctrl_c(self):
        if self._phase == STARTING:
            self._interrupt_pending = True  # delivered once the start-up script can take it
        elif self._phase == SCRIPTS:
            self._interrupt()
        elif self._phase == REPL and sigint_handled(self._child.pid):
            self._interrupt()
        else:  # at a prompt, or about to be: a key for the REPL
            self._queue(self._to_child, _CTRL_C, _TO_CHILD_LIMIT, "input")

    def _interrupt(self):
        self._interrupt_pending = False
        self._interrupted = True
        self._child.send_signal(signal.SIGINT)
        self._interrupt_deadline = time.monotonic() + self.interrupt_timeout_s

    def _flush_child(self):
        try:
            written = os.write(self._child.stdin.fileno(), self._to_child)
        except BlockingIOError:
            return
        except OSError:  # the child is going; its exit is handled when its output ends
            self._to_child.clear()
            return
        del self._to_child[:written]

    # From the child

    def _read_child(self):
        """Pass the child's output on; True when it ended and a new child was started."""
        try:
            data = os.read(self._child.stdout.fileno(), _READ_SIZE)
        except BlockingIOError:
            return False
        if data:
            self._from_child(data)
            return False
        self._after_exit()
        return True

    def _from_child(self, data):
        data = self._pending + data
        self._pending = b""
        if self._phase == STARTING:
            data = self._past(data, _UP)
            if data is None:
                return
            self._phase = SCRIPTS
            if self._interrupt_pending and _READY in data:
                # The scripts are over already: the Ctrl-C is for the REPL.
                self._interrupt_pending = False
                self._queue(self._to_child, _CTRL_C, _TO_CHILD_LIMIT, "input")
            elif self._interrupt_pending:
                self._interrupt()
        if self._phase == SCRIPTS:
            data = self._past(data, _READY)
            if data is None:
                return
            self._phase = BANNER
            self._banner = b""
            self._send_control(_GO)
        if self._phase == BANNER:
            self._banner += data
            index = self._banner.find(_FRIENDLY_PROMPT)
            if index < 0:
                return
            end = index + len(_FRIENDLY_PROMPT)
            if self.mode == RAW:
                # Back from a soft reset in the raw REPL: a board goes straight back to it.
                self._send_control(_CTRL_A)
                data = self._banner[end:]
            else:
                data = self._banner
            self._phase = REPL
        self._emit(data)

    def _send_control(self, byte):
        """A byte of our own for the child, ahead of the host's input (held until REPL)."""
        try:
            os.write(self._child.stdin.fileno(), byte)
        except OSError:  # the child is going; its exit is handled when its output ends
            pass

    def _past(self, data, marker):
        """Pass on what comes before marker; what follows it, or None if it has not come."""
        index = data.find(marker)
        if index < 0:
            data, self._pending = split_partial(data, marker)
            self._emit(data)
            return None
        self._emit(data[:index])
        return data[index + len(marker):]

    def _emit(self, data):
        if not data:
            return
        window = self._tail + data
        was = self.mode
        raw_at = window.rfind(_RAW_BANNER)
        friendly_at = window.rfind(_FRIENDLY_BANNER)
        if raw_at > friendly_at:
            self.mode = RAW
        elif friendly_at > raw_at:
            self.mode = FRIENDLY
        if was == FRIENDLY and self.mode == FRIENDLY:
            # A board sends CR LF; the unix port prints bare LF, which a terminal staircases.
            head = data[:1] if self._last == b"\r" and data[:1] == b"\n" else b""
            data = head + _LONE_LF.sub(b"\r\n", data[len(head):])
        self._last = data[-1:]
        self._tail = window[-_TAIL:]
        if self._interrupt_deadline is not None and self._tail.endswith((_FRIENDLY_PROMPT, b">")):
            self._interrupt_deadline = None
        self._queue(self._to_host, data, _TO_HOST_LIMIT, "output")

    def _flush_host(self):
        try:
            written = os.write(self._master, self._to_host)
        except OSError:  # full (EAGAIN) or the host just hung up (EIO)
            return
        del self._to_host[:written]

    def _queue(self, buffer, data, limit, what):
        room = limit - len(buffer)
        if len(data) > room:
            if room > 0:  # said once as the buffer fills, not for every chunk after
                self.log("%s buffer full (%d bytes): dropping" % (what, limit))
            data = data[:max(room, 0)]
        buffer += data

    # The child's life

    def _start(self, run_main):
        script = _STARTUP % (_UP.decode(), _READY.decode(), self.folder, run_main)
        self._child = subprocess.Popen(
            [self.micropython, "-X", "heapsize=" + self.heap, "-i", "-c", script],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.folder, env=self.env, start_new_session=True)
        os.set_blocking(self._child.stdin.fileno(), False)
        os.set_blocking(self._child.stdout.fileno(), False)
        self._phase = STARTING
        self._main = run_main
        self._interrupt_pending = False
        self._interrupted = False
        self._pending = b""
        self._tail = b""
        self._interrupt_deadline = None
        self.log("pid %d: %s REPL%s" % (self._child.pid, self.mode, ", main.py" if run_main else ""))

    def _after_exit(self):
        try:
            code = self._child.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # closed its output but lives on: pull the plug
            self._kill_child()
            code = -signal.SIGKILL
        self._close_child()
        if code == RESET_EXIT_CODE or code < 0:
            self.log("hard reset (exit %d)" % code)
            self.mode = FRIENDLY
            self._start(run_main=True)
        else:
            self.log("soft reboot (exit %d)" % code)
            self._emit(_SOFT_REBOOT)
            self._start(run_main=self.mode == FRIENDLY)

    def _check_interrupt(self):
        if self._interrupt_deadline is None or time.monotonic() < self._interrupt_deadline:
            return
        self.log("no prompt %.1f s after Ctrl-C: hard reset" % self.interrupt_timeout_s)
        self._kill_child()
        self._close_child()
        self.mode = FRIENDLY
        self._start(run_main=True)

    def _kill_child(self):
        self._child.kill()
        self._child.wait()

    def _stop_child(self):
        if self._child is None:
            return
        if self._child.poll() is None:
            self._child.terminate()
            try:
                self._child.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill_child()
        self._close_child()

    def _close_child(self):
        self._child.stdin.close()
        self._child.stdout.close()

