# The static gates themselves must catch what MicroPython rejects.
import os
import subprocess
import sys

from tools import mpy_build
from tools.board_files import PC_ONLY, ROOT, board_paths, lib_sources


def test_mpy_cross_rejects_a_match_statement(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("def f(x):\n    match x:\n        case 1:\n            return 2\n")
    ok, message = mpy_build.compile_file(str(source), str(tmp_path / "bad.mpy"), "bad.py")
    assert not ok and "SyntaxError" in message


def test_mpy_cross_accepts_the_whole_tree(tmp_path):
    total, failures = mpy_build.build(str(tmp_path), include_pc=True)
    assert failures == [] and total > 0
    assert (tmp_path / "lib" / "cellmqtt" / "ledger.mpy").exists()
    assert (tmp_path / "boot.py").exists()


def test_board_files_leave_out_the_pc_half_of_the_port():
    board = lib_sources()
    assert "cellmqtt/port/esp32.py" in board
    assert not set(PC_ONLY) & set(board)
    assert all(os.path.exists(path) for path in board_paths())


def test_type_gate_rejects_an_import_the_board_lacks(tmp_path):
    bad = tmp_path / "uses_threading.py"
    bad.write_text("import threading\n\nthreading.Thread(target=print).start()\n")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", os.path.join(ROOT, "mypy.ini"), str(bad)],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "threading" in result.stdout
