# The simulated board loading the firmware each way a board can (test_simboard.py runs the
# default: the .mpy files make deploy ships) and on the board's own port layer (port/esp32.py
# on the stand-ins for machine and network): a few windows each, every reading delivered.
import pytest

from tests.host.test_simboard import _check_delivery, _run
from tools import simboard

CYCLES = 3


@pytest.mark.parametrize("options", [
    ("--from-source", "--heap", "512K"),  # compiling the source at import takes room
    ("--romfs",),
    ("--port", "esp32"),
    ("--romfs", "--port", "esp32"),
    ("--port", "esp32", "--transport", "ppp", "--heap", "512K"),
], ids=" ".join)
def test_every_reading_is_delivered(tmp_path, micropython_bin, options):
    code, figures = _run(tmp_path, "--runtime", "micropython", "--cycles", str(CYCLES), *options)
    assert code == 0
    _check_delivery(figures, CYCLES)
    if "ppp" in options:
        assert figures["ppp_sessions"] == CYCLES


@pytest.mark.parametrize("options", [("--romfs",), ("--port", "esp32")])
def test_cpython_runs_only_the_source_and_the_pc_port(capsys, options):
    with pytest.raises(SystemExit):
        simboard.main(["--runtime", "cpython"] + list(options))
    assert "need --runtime micropython" in capsys.readouterr().err
