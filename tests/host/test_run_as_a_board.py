# The library as a board gets it, wherever a PC runs MicroPython: the test lane and the
# virtual board import the .mpy files make deploy ships (the simulated board:
# test_simboard.py, test_simboard_as_a_board.py).
import glob
import shutil

import pytest

from tests.host.test_vboard import mpremote
from tools import mp_lane, mpy_build
from tools.vboard.process import VboardProcess


def test_the_board_build_is_plain_bytecode(tmp_path):
    # -march=xtensawin adds an architecture only to files with native code; without one
    # the unix port runs the very files a board gets
    total, failures = mpy_build.build(str(tmp_path))
    assert failures == [] and total > 0
    files = glob.glob(str(tmp_path / "lib" / "**" / "*.mpy"), recursive=True)
    assert files
    for path in files:
        with open(path, "rb") as f:
            header = f.read(4)
        assert header[:2] == b"M\x06" and header[2] == 0, (path, header)


def test_the_lane_imports_the_library_it_is_given(tmp_path, micropython_bin):
    lib = mpy_build.build_for_pc(str(tmp_path / "build"))
    lines, passed, failed = mp_lane.run_module("test_ledger", "256K", 0, lib)
    assert failed == 0 and passed > 0, lines
    empty = tmp_path / "empty"
    empty.mkdir()
    lines, passed, failed = mp_lane.run_module("test_ledger", "256K", 0, str(empty))
    assert failed == 1 and "cellmqtt" in "\n".join(lines)  # lib/*.py is not behind it


@pytest.mark.parametrize("args, suffix", [((), ".mpy"), (("--from-source",), ".py")])
def test_a_new_virtual_board_has_the_library_in_lib(micropython_bin, args, suffix):
    board = VboardProcess(None, args)
    try:
        out = mpremote(board, "exec", "from cellmqtt import ledger, port\n"
                       "print('LIB', ledger.__file__, port.NAME)").stdout
    finally:
        board.stop()
        shutil.rmtree(board.folder)
    assert "LIB /lib/cellmqtt/ledger%s unix" % suffix in out, out
