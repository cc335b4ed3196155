# The emulator as a product: its command line in a child process (addresses printed,
# a session served, exit 0 on SIGTERM), the pty mode, and the in-process asyncio API.
import asyncio
import os
import re
import signal
import subprocess
import sys
import tty

import pytest

from tools.board_files import ROOT
from tools.services import EchoServer
from tools.sim7600_emu import Emulator
from tools.sim7600_emu.threaded import Control, Wire

OK = b"\r\nOK\r\n"
STOP_TIMEOUT_S = 5


def start_cli(*arguments):
    """The CLI in a child process and the first two lines it printed."""
    process = subprocess.Popen([sys.executable, "-m", "tools.sim7600_emu", *arguments],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    lines = [process.stdout.readline().strip(), process.stdout.readline().strip()]
    return process, lines


def stop_cli(process):
    """SIGTERM by PID; the exit status."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def test_cli_prints_its_addresses_serves_a_session_and_exits_0_on_sigterm():
    process, lines = start_cli("--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
                               "--power", "on", "--time-scale", "0")
    try:
        assert re.fullmatch(r"UART 127\.0\.0\.1:\d+", lines[0]), lines
        assert re.fullmatch(r"CONTROL 127\.0\.0\.1:\d+", lines[1]), lines
        uart = Wire(lines[0].split()[1])
        uart.send(b"AT\r")
        uart.expect(b"AT\r" + OK)
        control = Control(lines[1].split()[1])
        assert '"powered": true' in control.ask("STATE")
        control.close()
        uart.close()
    finally:
        assert stop_cli(process) == 0


def test_cli_starts_off_by_default_and_takes_faults_and_pins():
    process, lines = start_cli("--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
                               "--time-scale", "0", "--pins", "PWRKEY=5",
                               "--fault", "no_signal", "error:command=AT+CPIN,count=1")
    try:
        uart = Wire(lines[0].split()[1])
        control = Control(lines[1].split()[1])
        uart.send(b"AT\r")
        assert uart.drain() == b""  # off
        assert control.ask("SET 5 1") == "OK" and control.ask("SET 5 0") == "OK"
        uart.read_until(b"PB DONE\r\n")
        uart.send(b"AT+CSQ\r")
        uart.expect(b"AT+CSQ\r\r\n+CSQ: 99,99\r\n" + OK)
        uart.send(b"AT+CPIN?\r")
        uart.expect(b"AT+CPIN?\r\r\nERROR\r\n")
        control.close()
        uart.close()
    finally:
        assert stop_cli(process) == 0


@pytest.mark.parametrize("arguments", [
    ["--time-scale", "-1"], ["--fault", "nope"], ["--pins", "BOGUS=3"], ["--power", "maybe"],
    ["--pins", "PWRKEY=25"],
])
def test_cli_refuses_bad_arguments_with_status_2(arguments):
    result = subprocess.run([sys.executable, "-m", "tools.sim7600_emu", *arguments], cwd=ROOT,
                            capture_output=True, text=True, timeout=10, check=False)
    assert result.returncode == 2 and "error:" in result.stderr


def test_cli_on_a_pty_answers_through_the_terminal():
    process, lines = start_cli("--pty", "--control", "127.0.0.1:0", "--power", "on",
                               "--time-scale", "0")
    try:
        assert re.fullmatch(r"PTY /dev/pts/\d+", lines[0]), lines
        terminal = os.open(lines[0].split()[1], os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(terminal)
            os.write(terminal, b"AT+CSQ\r")
            expected = b"AT+CSQ\r\r\n+CSQ: 21,99\r\n" + OK
            got = b""
            while len(got) < len(expected):
                got += os.read(terminal, 100)
            assert got == expected
        finally:
            os.close(terminal)
    finally:
        assert stop_cli(process) == 0


def test_in_process_api_serves_and_stop_closes_the_bridged_links():
    async def session():
        echo = EchoServer().start()
        emulator = Emulator(power_on=True, time_scale=0.0)
        await emulator.start(uart="127.0.0.1:0", control="127.0.0.1:0")
        assert re.fullmatch(r"127\.0\.0\.1:\d+", emulator.uart_address)
        assert re.fullmatch(r"127\.0\.0\.1:\d+", emulator.control_address)
        host, port = emulator.uart_address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))

        async def ask(line, until):
            writer.write(line)
            return await asyncio.wait_for(reader.readuntil(until), 2)

        assert await ask(b"ATE0\r", b"OK\r\n") == b"ATE0\r" + OK
        assert await ask(b"AT+NETOPEN\r", b"+NETOPEN: 0\r\n") == OK + b"\r\n+NETOPEN: 0\r\n"
        echo_port = echo.address.rpartition(":")[2].encode()
        await ask(b'AT+CIPOPEN=0,"TCP","127.0.0.1",' + echo_port + b"\r", b"+CIPOPEN: 0,0\r\n")
        assert emulator.state()["links"] == [0]
        emulator.fault("cme", code=13)
        assert await ask(b"AT\r", b"\r\n") + await reader.readuntil(b"\r\n") == \
            b"\r\n+CME ERROR: 13\r\n"
        emulator.clear_faults()
        emulator.reset()
        assert emulator.state()["links"] == [] and emulator.state()["echo"] is True
        accepted = asyncio.Queue()
        remote = await asyncio.start_server(lambda r, w: accepted.put_nowait((r, w)),
                                            "127.0.0.1", 0)
        remote_port = b"%d" % remote.sockets[0].getsockname()[1]
        await ask(b'AT+NETOPEN\r', b"+NETOPEN: 0\r\n")
        await ask(b'AT+CIPOPEN=1,"TCP","127.0.0.1",' + remote_port + b"\r", b"+CIPOPEN: 1,0\r\n")
        remote_reader, remote_writer = await asyncio.wait_for(accepted.get(), 2)
        await emulator.stop()
        assert await asyncio.wait_for(reader.read(), 2) == b""  # the UART connection closed
        with pytest.raises(ConnectionResetError):  # the bridged link was reset
            await asyncio.wait_for(remote_reader.read(), 2)
        writer.close()
        remote_writer.close()
        remote.close()
        await remote.wait_closed()
        echo.stop()
        return emulator.state()

    final = asyncio.run(session())
    assert final["links"] == [] and final["powered"] is False
