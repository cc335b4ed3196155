# Build, deploy and the board's REPL commands, against the virtual board through mpremote;
# and package.json for `mpremote mip install`.
import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

import cellmqtt
from tools import console, deploy, mip_package, mpy_build
from tools.board_files import LIB, ROOT, lib_sources
from tools.services import EmulatorProcess
from tools.vboard.process import VboardProcess

MPREMOTE = os.path.join(os.path.dirname(sys.executable), "mpremote")
TIMEOUT_S = 60


def run(command, **kwargs):
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False, **kwargs)


def make(*args):
    return run(["make", "--no-print-directory"] + list(args))


def mpremote(device, *args):
    result = run([MPREMOTE, "connect", device] + list(args))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def board(tmp_path, micropython_bin):
    folder = tmp_path / "flash"
    folder.mkdir()
    with VboardProcess(str(folder)) as vboard:
        yield vboard


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A virtual board wired to the SIM7600 emulator, with the library deployed once."""
    build = str(tmp_path_factory.mktemp("build"))
    total, failures = mpy_build.build(build)
    assert failures == [] and total > 0
    emulator = EmulatorProcess("--power", "on", "--time-scale", "0").start()
    try:
        args = ["--modem", emulator.uart, "--control", emulator.control, "--device-id", "0123abcd"]
        with VboardProcess(str(tmp_path_factory.mktemp("flash")), args) as vboard:
            deploy.deploy(vboard.device, build)
            deploy.soft_reset(vboard.device)
            # booted: the console answers (a loaded machine may take longer than its 10 s)
            console.ask(vboard.device, "free", timeout_s=TIMEOUT_S)
            yield vboard
    finally:
        emulator.stop()


def test_make_deploy_copies_the_build_then_nothing_when_unchanged(board, tmp_path):
    build = tmp_path / "build"
    first = make("deploy", "PORT=" + board.device, "BUILD=" + str(build))
    assert first.returncode == 0, first.stdout + first.stderr + board.log()
    built = {os.path.relpath(os.path.join(folder, name), build)
             for folder, _, names in os.walk(build) for name in names}
    assert "boot.py" in built and "lib/cellmqtt/ledger.mpy" in built
    assert not any(name.startswith("lib/") and not name.endswith(".mpy") for name in built)
    # The unix port also gets the PC half of the port layer.
    on_board = built | {"lib/cellmqtt/port/unix.mpy", "lib/cellmqtt/port/_pc.mpy", "lib/cellmqtt/port/cpython.mpy"}
    assert "%d copied, 0 removed, 0 unchanged" % len(on_board) in first.stdout
    manifest = json.loads((tmp_path / "flash" / ".deployed.json").read_text())
    assert set(manifest) == on_board
    for name in built:
        assert digest(tmp_path / "flash" / name) == digest(build / name) == manifest[name]
    assert "soft reset" in first.stdout and "soft reboot" in board.log()

    second = make("deploy", "PORT=" + board.device, "BUILD=" + str(build))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 copied, 0 removed, %d unchanged" % len(on_board) in second.stdout


def test_deploy_copies_only_what_changed_and_removes_only_what_it_wrote(board, tmp_path):
    build = tmp_path / "build"
    mpy_build.build(str(build))
    extra = build / "lib" / "extra.mpy"
    ok, message = mpy_build.compile_file(os.path.join(LIB, "cellmqtt", "_const.py"), str(extra), "extra.py")
    assert ok, message
    user_file = tmp_path / "flash" / "notes.txt"
    user_file.write_text("mine")
    command = [sys.executable, "-m", "tools.deploy", "--port", board.device, "--build", str(build)]
    assert run(command).returncode == 0
    assert (tmp_path / "flash" / "lib" / "extra.mpy").exists()

    with open(build / "boot.py", "a") as f:
        f.write("# changed\n")
    extra.unlink()
    second = run(command)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 copied, 1 removed" in second.stdout and "copy   /boot.py" in second.stdout
    assert (tmp_path / "flash" / "boot.py").read_text().endswith("# changed\n")
    assert not (tmp_path / "flash" / "lib" / "extra.mpy").exists()

    app_only = run(command + ["--app-only"])
    assert app_only.returncode == 0, app_only.stdout + app_only.stderr
    assert not [names for _, _, names in os.walk(tmp_path / "flash" / "lib") if names]
    assert (tmp_path / "flash" / "boot.py").exists() and user_file.read_text() == "mine"


def test_deploy_refuses_a_missing_port_device_or_build(board, tmp_path):
    no_port = make("deploy")
    assert no_port.returncode != 0 and "PORT is not set" in no_port.stderr
    no_device = run([sys.executable, "-m", "tools.deploy", "--port", "/dev/ttyNOPE0"])
    assert no_device.returncode == 2 and "no device /dev/ttyNOPE0" in no_device.stderr
    no_build = run([sys.executable, "-m", "tools.deploy", "--port", board.device, "--build", str(tmp_path / "none")])
    assert no_build.returncode == 1 and "run `make mpy` first" in no_build.stderr


def test_make_free_prints_the_msh_lines_of_the_board(deployed):
    result = make("free", "PORT=" + deployed.device)
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"total memory: (\d+)\nused memory : (\d+)\nmaximum allocated memory: (\d+)", result.stdout)
    assert found, result.stdout
    total, used, peak = (int(figure) for figure in found.groups())
    assert 240 * 1024 < total <= 256 * 1024
    assert 0 < used <= peak < total


def test_make_list_fd_and_netstat_run_on_the_board(deployed):
    listed = make("list_fd", "PORT=" + deployed.device)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "fd type    ref owner  detail\n-- ------  --- -----  ------\n" in listed.stdout
    netstat = make("netstat", "PORT=" + deployed.device)
    assert netstat.returncode == 0 and "Traceback" not in netstat.stdout, netstat.stdout + netstat.stderr


def test_the_deployed_port_layer_talks_to_the_emulator(deployed):
    out = mpremote(deployed.device, "exec", """\
import asyncio
from cellmqtt import port
async def main():
    uart = await port.open_uart({"id": 1, "baud": 115200, "tx": 27, "rx": 26})
    await uart.write(b'AT\\r')
    seen = b''
    for _ in range(20):
        seen += await asyncio.wait_for(uart.read(64), 2)
        if b'OK' in seen:
            break
    await uart.close()
    print(port.NAME, port.unique_id(), repr(seen))
asyncio.run(main())
""")
    assert out.startswith("unix 0123abcd ") and "OK" in out, out


def test_package_json_lists_exactly_the_board_lib_files(tmp_path):
    with open(os.path.join(ROOT, "package.json")) as f:
        text = f.read()
    package = json.loads(text)
    assert [target for target, _ in package["urls"]] == lib_sources()
    assert all(url == "lib/" + target and os.path.exists(os.path.join(ROOT, url)) for target, url in package["urls"])
    assert package["version"] == cellmqtt.VERSION
    assert text == mip_package.render(), "package.json is stale: run `make package-json`"


def test_mip_install_from_the_local_package_json_fills_lib(board, tmp_path):
    mpremote(board.device, "mip", "install", "--target", "/lib", os.path.join(ROOT, "package.json"))
    with open(os.path.join(ROOT, "package.json")) as f:
        listed = json.load(f)["urls"]
    assert listed
    for target, url in listed:
        with open(os.path.join(ROOT, url), "rb") as source:
            assert (tmp_path / "flash" / "lib" / target).read_bytes() == source.read(), target
