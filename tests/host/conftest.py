import os

import pytest

from tools.board_files import ROOT

MICROPYTHON = os.path.join(ROOT, ".venv-micropython", "bin", "micropython")


@pytest.fixture
def micropython_bin():
    if not os.path.exists(MICROPYTHON):
        pytest.fail("the MicroPython unix port is missing: run `make deps`")
    return MICROPYTHON
