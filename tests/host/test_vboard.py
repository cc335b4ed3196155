# The virtual board through the real mpremote and a raw serial line, as a user's tools see it.
import os
import re
import subprocess
import sys
import time

import pytest
import serial

from cellmqtt.port import _pc
from tools.board_files import ROOT
from tools.services import child_pids
from tools.vboard import RESET_EXIT_CODE
from tools.vboard.process import VboardProcess

MPREMOTE = os.path.join(os.path.dirname(sys.executable), "mpremote")
MPREMOTE_TIMEOUT_S = 20
INTERRUPT_TIMEOUT_S = 1.5


@pytest.fixture
def board(tmp_path, micropython_bin):
    folder = tmp_path / "flash"
    folder.mkdir()
    with VboardProcess(str(folder), ["--interrupt-timeout", str(INTERRUPT_TIMEOUT_S)]) as vboard:
        yield vboard


def mpremote(board, *args, check=True):
    result = subprocess.run([MPREMOTE, "connect", board.device] + list(args), capture_output=True,
                            text=True, timeout=MPREMOTE_TIMEOUT_S, check=False)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr + board.log()
    return result


class Terminal:
    """A raw serial line to the board, as a terminal program opens it."""

    def __init__(self, board):
        self.board = board
        self.serial = serial.Serial(board.device, 115200, timeout=0.05)
        self.seen = b""

    def send(self, data):
        self.serial.write(data)

    def expect(self, wanted, timeout_s=5):
        deadline = time.monotonic() + timeout_s
        while wanted not in self.seen and time.monotonic() < deadline:
            self.seen += self.serial.read(4096)
        assert wanted in self.seen, (wanted, self.seen, self.board.log())
        before, _, self.seen = self.seen.partition(wanted)
        return before

    def prompt(self):
        self.send(b"\x03")
        self.expect(b">>> ")
        # the ^C may meet a prompt already on its way (the banner's): a marker printed
        # and waited for puts the next expect after the last prompt, however slow the board
        self.send(b"print('sy' + 'nc')\r")
        self.expect(b"\r\nsync\r\n>>> ")
        self.seen = b""

    def close(self):
        self.serial.close()


@pytest.fixture
def terminal(board):
    line = Terminal(board)
    line.prompt()
    yield line
    line.close()


def wait_for(condition, timeout_s=5):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def wait_for_file(path):
    return wait_for(lambda: os.path.exists(path))


def test_mpremote_exec_runs_on_the_unix_port_with_the_board_layout_and_a_capped_heap(board):
    out = mpremote(board, "exec", "import gc, os, sys\n"
                   "print(sys.platform, sys.implementation.name, sys.path, os.getcwd())\n"
                   "gc.collect()\nprint(gc.mem_free() + gc.mem_alloc())").stdout
    assert "linux micropython ['', '/lib', '.frozen'] /" in out
    heap = int(out.split()[-1])
    assert 240 * 1024 < heap <= 256 * 1024
    too_big = mpremote(board, "exec", "b = bytearray(300 * 1024)", check=False)
    assert too_big.returncode != 0 and "MemoryError" in too_big.stdout + too_big.stderr


def test_fs_cp_and_ls_use_the_host_folder_as_flash(board, tmp_path):
    data = os.urandom(20000)
    (tmp_path / "data.bin").write_bytes(data)
    out = mpremote(board, "fs", "mkdir", ":/lib", "+", "fs", "cp", str(tmp_path / "data.bin"), ":/lib/data.bin",
                   "+", "fs", "ls", ":/lib").stdout
    assert "data.bin" in out
    assert (tmp_path / "flash" / "lib" / "data.bin").read_bytes() == data
    mpremote(board, "fs", "cp", ":/lib/data.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data


def test_soft_reset_restarts_the_vm_runs_boot_py_and_keeps_files(board, terminal):
    flash = board.folder
    with open(os.path.join(flash, "boot.py"), "w") as f:
        f.write("f = open('boots', 'a')\nf.write('b')\nf.close()\nprint('boot.py ran')\n")
    terminal.send(b"x = 42\r")
    terminal.expect(b">>> ")
    terminal.send(b"print(x)\r")
    assert b"42\r\n" in terminal.expect(b">>> ")
    terminal.send(b"\x04")
    terminal.expect(b"MPY: soft reboot\r\n")
    assert terminal.expect(b">>> ").startswith(b"boot.py ran\r\n")
    terminal.send(b"print(x)\r")
    assert b"NameError" in terminal.expect(b">>> ")
    terminal.send(b"print(open('boots').read())\r")
    assert b"\r\nb\r\n" in terminal.expect(b">>> ")


def test_main_py_runs_after_a_soft_reset_from_the_friendly_repl_not_the_raw_one(board, terminal):
    with open(os.path.join(board.folder, "main.py"), "w") as f:
        f.write("f = open('mains', 'a')\nf.write('m')\nf.close()\n")
    mains = os.path.join(board.folder, "mains")
    terminal.close()
    mpremote(board, "soft-reset")
    assert not os.path.exists(mains)
    terminal = Terminal(board)
    terminal.prompt()
    terminal.send(b"\x04")
    terminal.expect(b"MPY: soft reboot\r\n")
    terminal.expect(b">>> ")
    terminal.close()
    with open(mains) as f:
        assert f.read() == "m"


def test_ctrl_c_interrupts_a_running_program_and_the_vm_lives_on(board, terminal):
    terminal.send(b"x = 1\r")
    terminal.expect(b">>> ")
    terminal.send(b"while True: pass\r\r")
    terminal.expect(b"pass\r\n")  # the board has the loop (a busy board echoes late)
    time.sleep(0.5)
    assert b">>> " not in terminal.seen + terminal.serial.read(4096)
    terminal.send(b"\x03")
    assert b"KeyboardInterrupt" in terminal.expect(b">>> ")
    terminal.send(b"print(x + 1)\r")
    assert b"2\r\n" in terminal.expect(b">>> ")
    assert "hard reset" not in board.log() and "soft reboot" not in board.log()


def test_ctrl_c_at_a_prompt_is_a_key_not_a_signal(board, terminal):
    terminal.send(b"y = 5\r")
    terminal.expect(b">>> ")
    terminal.send(b"\x03\x03")
    terminal.expect(b">>> ")
    terminal.expect(b">>> ")
    terminal.send(b"print(y)\r")
    assert b"5\r\n" in terminal.expect(b">>> ")
    assert board.log().count("pid ") == 1


def test_mpremote_regains_a_board_stuck_in_a_loop(board):
    stuck = subprocess.Popen([MPREMOTE, "connect", board.device, "exec", "while True: pass"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    assert stuck.poll() is None
    stuck.kill()
    stuck.wait()
    assert "regained" in mpremote(board, "exec", "print('regained')").stdout
    assert "hard reset" not in board.log()


def test_a_program_that_swallows_ctrl_c_is_restarted(board, terminal):
    terminal.close()
    mpremote(board, "exec", "--no-follow", "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n"
             "    except KeyboardInterrupt:\n        pass\n")
    terminal = Terminal(board)
    started = time.monotonic()
    terminal.send(b"\x03")
    terminal.expect(b"Type \"help()\" for more information.\r\n>>> ", timeout_s=INTERRUPT_TIMEOUT_S + 3)
    assert time.monotonic() - started >= INTERRUPT_TIMEOUT_S - 0.1
    assert "no prompt 1.5 s after Ctrl-C: hard reset" in board.log()
    terminal.send(b"print(6 * 7)\r")
    assert b"42\r\n" in terminal.expect(b">>> ")
    terminal.close()


def test_exit_code_75_is_a_hard_reset_that_runs_boot_and_main_again(board):
    assert RESET_EXIT_CODE == _pc.RESET_EXIT_CODE
    with open(os.path.join(board.folder, "main.py"), "w") as f:
        f.write("f = open('mains', 'a')\nf.write('m')\nf.close()\n")
    mpremote(board, "exec", "--no-follow", "import sys\nsys.exit(%d)" % RESET_EXIT_CODE)
    assert wait_for_file(os.path.join(board.folder, "mains"))
    # mpremote had left the board in the raw REPL: a hard reset comes back friendly.
    assert wait_for(lambda: re.search(r"hard reset \(exit 75\)\nvboard: pid \d+: friendly REPL, main.py",
                                      board.log())), board.log()


def test_output_with_no_host_attached_is_dropped_without_blocking(board):
    with open(os.path.join(board.folder, "main.py"), "w") as f:
        f.write("for i in range(2000):\n    print('x' * 500)\nf = open('done', 'w')\nf.close()\n")
    mpremote(board, "exec", "--no-follow", "import sys\nsys.exit(%d)" % RESET_EXIT_CODE)
    assert wait_for_file(os.path.join(board.folder, "done"))
    assert "alive" in mpremote(board, "exec", "print('alive')").stdout


def test_modem_pins_and_device_id_reach_the_board(tmp_path, micropython_bin):
    args = ["--modem", "127.0.0.1:4001", "--control", "127.0.0.1:4002", "--device-id", "0123abcd"]
    with VboardProcess(str(tmp_path), args) as vboard:
        out = mpremote(vboard, "exec", "import os\nfor name in ('MODEM', 'CONTROL', 'DEVICE_ID'):\n"
                       "    print(os.getenv('CELLMQTT_' + name))").stdout
    assert out.split() == ["127.0.0.1:4001", "127.0.0.1:4002", "0123abcd"]


def test_the_rtc_and_its_memory_run_through_a_reset_and_a_new_run_is_a_power_on(micropython_bin):
    """As a board's RTC: set, it stays set across a hard reset, and its memory is kept
    (readings taken before a sync are dated from them); a new run of the board starts
    with neither."""
    ask = "from cellmqtt import port\nprint('rtc', port.utc(), port.rtc_memory())"
    with VboardProcess(None, ["--interrupt-timeout", str(INTERRUPT_TIMEOUT_S)]) as vboard:
        mpremote(vboard, "exec", "from cellmqtt import port\nport.set_utc(1900000000)\nport.rtc_memory(b'kept')")
        mpremote(vboard, "exec", "--no-follow", "import sys\nsys.exit(%d)" % RESET_EXIT_CODE)
        assert wait_for(lambda: "hard reset (exit 75)" in vboard.log()), vboard.log()
        utc, memory = re.search(r"rtc (\S+) (\S+)", mpremote(vboard, "exec", ask).stdout).groups()
        folder = vboard.folder
    assert int(utc) >= 1900000000 and memory == "b'kept'"
    with VboardProcess(folder, ["--interrupt-timeout", str(INTERRUPT_TIMEOUT_S)]) as vboard:
        assert re.search(r"rtc None b''", mpremote(vboard, "exec", ask).stdout), vboard.log()


def test_stopping_the_board_stops_its_child(tmp_path, micropython_bin):
    vboard = VboardProcess(str(tmp_path))
    pid = vboard.process.pid
    children = []
    deadline = time.monotonic() + 5
    try:
        while not children and time.monotonic() < deadline:
            children = child_pids(pid)
    finally:
        vboard.stop()
    assert len(children) == 1
    assert vboard.process.returncode == 0
    assert not os.path.exists("/proc/%d" % children[0])


def test_bad_flags_are_refused_with_a_reason(tmp_path):
    for flags, reason in ((["--heap", "lots"], "--heap"), (["--modem", "localhost"], "HOST:PORT")):
        result = subprocess.run([sys.executable, "-m", "tools.vboard", "--folder", str(tmp_path)] + flags,
                                cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
        assert result.returncode == 2 and reason in result.stderr
