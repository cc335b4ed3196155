# `netstat` as a bare word at the real MicroPython REPL, with no event loop running.
import os
import subprocess

from tools.board_files import ROOT

# A driver on the scripted fake modem: one link open, the modem's table read, then the
# event loop ends and the REPL gets the prompt back.
SESSION = r"""
import asyncio
from modem_fakes import FakeModem, driver_with, ok, script_net_open, script_open
from cellmqtt.ledger import Ledger
from cellmqtt.modem.netstat import read_tables
async def session():
    global driver
    fake = FakeModem()
    driver = driver_with(fake, Ledger())
    script_net_open(fake)
    await driver.net_open()
    script_open(fake, 0, b"183.230.40.96", 1883)
    await driver.open_link("183.230.40.96", 1883)
    fake.expect(b"AT+IPADDR", ok(b"+IPADDR: 10.71.155.118"))
    fake.expect(b"AT+CIPOPEN?", ok(b'+CIPOPEN: 0,"TCP","183.230.40.96",1883,-1', b'+CIPOPEN: 2,"TCP","10.0.0.9",80,-1'))
    await read_tables(driver)
asyncio.run(session())
"""


def _repl(micropython_bin, lines):
    path = os.path.join(ROOT, "lib") + ":" + os.path.join(ROOT, "tests") + ":.frozen"
    env = dict(os.environ, MICROPYPATH=path)
    script = "exec(open('boot.py').read())\n" + "".join(line + "\n" for line in lines)
    # the test lane's heap: compiling the driver and the fake from source on a 64-bit
    # build needs more than a board, which loads precompiled or frozen bytecode
    result = subprocess.run(
        [micropython_bin, "-X", "heapsize=256K", "-i"], input=script, cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=30, check=False)
    return result.stdout


def test_netstat_without_a_modem(micropython_bin):
    assert "no modem attached" in _repl(micropython_bin, ["netstat"])


def test_netstat_from_the_last_read_table_with_no_event_loop(micropython_bin):
    out = _repl(micropython_bin, ["exec(%r)" % SESSION, "netstat"])
    assert "Active links:" in out
    assert "#0 10.71.155.118 <==> 183.230.40.96:1883  state: ESTABLISHED  modem: open" in out
    assert "#2 10.71.155.118 <==> 10.0.0.9:80  state: -  modem: open  LEAK: only the modem has it" in out
    assert "modem table: read 0 s ago" in out
