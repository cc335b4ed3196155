# A board whose heap is too small for a window: every window fails with MemoryError,
# and still nothing is held afterwards (the ledger, the modem's links, the modem's
# power) and no reading is lost. Each failure allocates where the last one did not,
# so the run walks the window's allocations.
import json
import subprocess
import sys

from tools.board_files import ROOT

HEAP = "192K"  # the 64-bit unix port boots in 192K (not 188K); no window fits (at 200K 5 of 6 do)


def test_memory_errors_in_every_window_leave_nothing_held(tmp_path):
    out = tmp_path / "run.json"
    result = subprocess.run([sys.executable, "-m", "tools.simboard", "--runtime", "micropython", "--cycles", "6",
                             "--time-scale", "0", "--heap", HEAP, "--quiet", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert out.exists(), "the board did not boot in %s: raise HEAP\n%s" % (HEAP, result.stdout[-2000:])
    run = json.loads(out.read_text())
    # when the firmware fits this heap, lower HEAP until windows fail again
    assert run["windows_ok"] < run["cycles"], "a window fits %s now: lower HEAP" % HEAP
    assert run["ledger_leaks"] == 0 and run["modem_links_open_after_power_off"] == 0
    assert run["modem_on_after_window"] == 0 and run["readings_lost"] == 0
    assert run["readings_delivered"] + run["readings_queued"] == run["readings_collected"]
