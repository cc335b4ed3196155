# `free` and `list_fd` as bare words at the real MicroPython REPL, installed by boot.py.
import os
import subprocess

from tools.board_files import ROOT


def _repl(micropython_bin, lines):
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "lib") + ":.frozen")
    script = "exec(open('boot.py').read())\n" + "".join(line + "\n" for line in lines)
    result = subprocess.run(
        [micropython_bin, "-X", "heapsize=110592", "-i"], input=script, cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=30, check=False)
    return result.stdout


def test_free_at_the_repl_prints_msh_lines(micropython_bin):
    out = _repl(micropython_bin, ["free"])
    assert "total memory: 10" in out  # the capped heap: ~109 KB, real figure
    used = int(out.split("used memory : ")[1].split()[0])
    peak = int(out.split("maximum allocated memory: ")[1].split()[0])
    assert 0 < used <= peak < 110592


def test_list_fd_at_the_repl_prints_the_ledger(micropython_bin):
    out = _repl(micropython_bin, [
        "from cellmqtt.ledger import ledger",
        "fd = ledger.acquire('uart', 'AT', 'UART1 115200')",
        "list_fd",
    ])
    assert "fd type    ref owner  detail\n-- ------  --- -----  ------\n 0 uart      1 AT     UART1 115200" in out
