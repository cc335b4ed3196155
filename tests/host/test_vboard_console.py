# `make free PORT=...` beside the running duty cycle: the firmware deployed to the virtual
# board (wired to the SIM7600 emulator and a real broker) answers `free` twice through
# tools/console.py while its windows keep completing; and the tool's reading of answers.
import os
import subprocess
import sys
import time

import pytest

from tests.host.duty_lab import duty_cycle_lab, virtual_board_files
from tools import console, deploy
from tools.board_files import ROOT
from tools.vboard.process import VboardProcess

TIME_SCALE = "0.002"
DEVICE = "vboard02"
_WAIT_S = 60
_FREE = ["total memory", "used memory ", "maximum allocated memory", "largest free block"]


def test_the_console_answer_is_read_between_its_lines_around_other_output():
    data = b"window 3 ok delivered=5\r\n<free>\r\ntotal memory: 10\r\nused memory : 4\r\n</free>\r\n"
    assert console.answer_in(data, "free") == ["total memory: 10", "used memory : 4"]
    assert console.answer_in(data[:-9], "free") is None  # not whole yet
    assert console.answer_in(b"window 4 ok\r\n", "free") is None


def test_at_the_repl_the_answer_is_what_comes_between_the_echo_and_the_prompt():
    data = b"free\r\ntotal memory: 10\r\nused memory : 4\r\n>>> "
    assert console.answer_in(data, "free") == ["total memory: 10", "used memory : 4"]
    assert console.answer_in(data[:-4], "free") is None


def test_at_the_repl_a_prompt_that_came_with_the_question_is_not_in_the_way():
    """A board that was still booting when asked prints its prompt after the question
    went, so the echo shares the prompt's line (a loaded machine's `make free` flake)."""
    data = b"Type \"help()\" for more information.\r\n>>> free\r\ntotal memory: 10\r\n>>> "
    assert console.answer_in(data, "free") == ["total memory: 10"]
    assert console._heard(data[:-24], "free") and not console._heard(data[:-26], "free")


def _window_lines(seen):
    return [line for line in seen.decode("utf-8", "replace").splitlines() if line.startswith("window ")]


@pytest.fixture
def bench(micropython_bin):
    with duty_cycle_lab(TIME_SCALE) as lab:
        yield lab


def _make_free(device):
    result = subprocess.run(["make", "-s", "--no-print-directory", "free", "PORT=" + device], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def test_make_free_answers_twice_while_windows_keep_completing(bench, tmp_path):
    broker, emulator, subscriber = bench
    build, flash = virtual_board_files(tmp_path, broker, DEVICE, TIME_SCALE)
    args = ["--modem", emulator.uart, "--control", emulator.control]
    with VboardProcess(flash, args, env=dict(os.environ, CELLMQTT_TIME_SCALE=TIME_SCALE)) as vboard:
        deploy.deploy(vboard.device, build)
        deploy.soft_reset(vboard.device)
        line = _Line(vboard.device)  # closed while make asks: a PTY has one reader
        try:
            first = line.windows(1)  # main.py runs its duty cycle
            answers = []
            for _ in range(2):
                line.close()
                answers.append(_make_free(vboard.device))
                line = _Line(vboard.device)
                windows = line.windows(1)  # and the next window completes after each answer
                assert all(" ok " in window for window in windows), windows
        finally:
            line.close()
    assert " ok " in first[0], first
    for lines in answers:
        assert [text.rpartition(":")[0] for text in lines] == _FREE, lines
        total, used, peak, largest = [int(text.rpartition(":")[2]) for text in lines]
        assert 0 < used <= peak < total and 0 < largest < total


class _Line:
    """The board's serial line, read for window lines only (never written)."""

    def __init__(self, device):
        import serial

        self._serial = serial.Serial(device, 115200, timeout=0.05)
        self._seen = b""

    def windows(self, count):
        deadline = time.monotonic() + _WAIT_S
        while time.monotonic() < deadline:
            self._seen += self._serial.read(4096)
            lines = _window_lines(self._seen)
            if len(lines) >= count:
                self._seen = b""
                return lines
        raise AssertionError("%d window lines in %d s: %r" % (count, _WAIT_S, self._seen[-2000:]))

    def close(self):
        self._serial.close()


def test_the_tool_says_why_when_no_answer_comes(tmp_path, micropython_bin):
    (tmp_path / "main.py").write_text("import time\nwhile True:\n    time.sleep(1)\n")  # no console
    with VboardProcess(str(tmp_path)) as vboard:
        result = subprocess.run([sys.executable, "-m", "tools.console", vboard.device, "free", "--timeout", "1"],
                                cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "deep sleep" in result.stderr, result.stderr
