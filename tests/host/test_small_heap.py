# A board whose heap is too small for a window: every window fails with MemoryError,
# and still nothing is held afterwards (the ledger, the modem's links, the modem's
# power) and no reading is lost. Each failure allocates where the last one did not,
# so the run walks the window's allocations.
import json
import subprocess
import sys

from tools.board_files import ROOT

# The band where the 64-bit unix port boots but windows run out of heap moves with every
# change of the firmware's size (208K, then 192K, then 200K within a day): the test walks
# up from a heap too small to boot (160K), in 4K steps, to the first in which the board boots
# and runs its 6 windows, and checks that run. Each window uploads 40 readings: with the
# usual 5 a window needs no more heap than the boot (both within 1K), so no heap would boot
# the board and still starve its windows.
FIRST_KB, LAST_KB, STEP_KB = 160, 256, 4
READINGS_PER_WINDOW = 40


def _run(tmp_path, heap):
    out = tmp_path / ("run-%s.json" % heap)
    result = subprocess.run([sys.executable, "-m", "tools.simboard", "--runtime", "micropython", "--cycles", "6",
                             "--time-scale", "0", "--heap", heap, "--readings-per-window", str(READINGS_PER_WINDOW),
                             "--quiet", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    return (json.loads(out.read_text()) if out.exists() else None), result.stdout[-2000:]


def test_memory_errors_in_every_window_leave_nothing_held(tmp_path):
    for kb in range(FIRST_KB, LAST_KB + 1, STEP_KB):
        run, output = _run(tmp_path, "%dK" % kb)
        if run is not None:
            break
    assert run is not None, "the board did not boot in %dK: raise LAST_KB\n%s" % (LAST_KB, output)
    assert kb > FIRST_KB, "the board runs in %dK already: lower FIRST_KB" % kb
    # the first heap it runs in is too small for some windows
    assert run["windows_ok"] < run["cycles"], "a window fits %dK, the smallest heap the board runs in" % kb
    assert run["ledger_leaks"] == 0 and run["modem_links_open_after_power_off"] == 0
    # delivered and queued may overlap: a batch the broker took before the window ran out
    # of heap stays queued and goes again (never lost)
    assert run["modem_on_after_window"] == 0 and run["readings_lost"] == 0
