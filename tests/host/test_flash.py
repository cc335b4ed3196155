# Flashing, checked up to where hardware is needed: arguments, the image, the exact esptool
# command lines, a port where no chip answers; past that, an esptool stand-in that answers
# as a board would. And the firmware manifest.
import os
import pty
import shlex
import struct
import subprocess
import sys
import tty

import pytest

from tools import flash
from tools.board_files import ROOT, lib_sources

ESPTOOL = os.path.join(os.path.dirname(sys.executable), "esptool")
# IMAGE_CHIP_ID in esptool's targets
CHIP_IDS = {"esp32": 0, "esp32s2": 2, "esp32c3": 5, "esp32s3": 9}


def image(path, chip_id, first_byte=0xE9):
    """The first bytes of an ESP bootloader image: header, extended header, a body."""
    header = struct.pack("<BBBBI", first_byte, 3, 2, 0x20, 0x40080400)
    extended = struct.pack("<B3sHB", 0xEE, bytes(3), chip_id, 0) + bytes(8)
    path.write_bytes(header + extended + bytes(1000))
    return str(path)


def run_flash(*args):
    return subprocess.run([sys.executable, "-m", "tools.flash"] + list(args), cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("chip, offset", [("esp32", "0x1000"), ("esp32s2", "0x1000"),
                                          ("esp32s3", "0x0"), ("esp32c3", "0x0")])
def test_dry_run_prints_the_esptool_commands_at_the_chips_offset(tmp_path, chip, offset):
    firmware = image(tmp_path / "firmware.bin", CHIP_IDS[chip])
    result = run_flash("--port", "/dev/ttyUSB0", "--dry-run", firmware)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        shlex.join([ESPTOOL, "--port", "/dev/ttyUSB0", "chip-id"]),
        shlex.join([ESPTOOL, "--chip", chip, "--port", "/dev/ttyUSB0", "erase-flash"]),
        shlex.join([ESPTOOL, "--chip", chip, "--port", "/dev/ttyUSB0", "--baud", "460800",
                    "write-flash", offset, firmware]),
    ]


def test_the_image_is_checked_before_anything_runs(tmp_path):
    missing = run_flash("--port", "/dev/ttyUSB0", str(tmp_path / "none.bin"))
    assert missing.returncode == 1 and "no firmware file" in missing.stderr
    not_esp = tmp_path / "readme.bin"
    not_esp.write_text("hello")
    wrong = run_flash("--port", "/dev/ttyUSB0", str(not_esp))
    assert wrong.returncode == 1 and "not an ESP32 firmware image" in wrong.stderr and "0x68" in wrong.stderr
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert "not an ESP32 firmware image" in run_flash("--port", "/dev/ttyUSB0", str(empty)).stderr
    unknown = run_flash("--port", "/dev/ttyUSB0", image(tmp_path / "odd.bin", 999))
    assert unknown.returncode == 1 and "chip id 999" in unknown.stderr
    no_port = run_flash(image(tmp_path / "fw.bin", 0))
    assert no_port.returncode == 2 and "--port" in no_port.stderr


def test_a_port_where_no_chip_answers_is_reported(tmp_path):
    firmware = image(tmp_path / "firmware.bin", 0)
    missing = run_flash("--port", "/dev/ttyNOPE0", firmware)
    assert missing.returncode == 1 and "no ESP chip answers on /dev/ttyNOPE0" in missing.stderr
    assert "doesn't exist" in missing.stderr
    master, slave = pty.openpty()
    tty.setraw(slave)
    try:
        silent = run_flash("--port", os.ttyname(slave), "--connect-attempts", "1", firmware)
    finally:
        os.close(slave)
        os.close(master)
    assert silent.returncode == 1 and "no ESP chip answers" in silent.stderr
    assert "hold BOOT (IO0)" in silent.stderr
    assert "erase-flash" not in silent.stdout


def fake_esptool(tmp_path, chip_name):
    """A stand-in for esptool that answers as a board with chip_name and logs its argv."""
    log = tmp_path / "esptool.log"
    script = tmp_path / "esptool"
    script.write_text(
        "#!%s\nimport sys\nwith open(%r, 'a') as log:\n    log.write(' '.join(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[-1] == 'chip-id':\n    print('Connected to %s on ' + sys.argv[2] + ':')\n"
        % (sys.executable, str(log), chip_name))
    script.chmod(0o755)
    return str(script), log


def test_flashing_probes_then_erases_then_writes(tmp_path, capsys):
    tool, log = fake_esptool(tmp_path, "ESP32")
    firmware = image(tmp_path / "firmware.bin", 0)
    flash.flash("/dev/ttyUSB0", firmware, 921600, tool=tool)
    assert log.read_text().splitlines() == [
        "--port /dev/ttyUSB0 chip-id",
        "--chip esp32 --port /dev/ttyUSB0 erase-flash",
        "--chip esp32 --port /dev/ttyUSB0 --baud 921600 write-flash 0x1000 " + firmware,
    ]
    assert "flashed %s at 0x1000" % firmware in capsys.readouterr().out


def test_an_image_for_another_chip_is_refused_before_erasing(tmp_path):
    tool, log = fake_esptool(tmp_path, "ESP32-S3")
    firmware = image(tmp_path / "firmware.bin", 0)
    with pytest.raises(flash.FlashError) as refused:
        flash.flash("/dev/ttyUSB0", firmware, 460800, tool=tool)
    assert "built for ESP32, but the board on /dev/ttyUSB0 is ESP32-S3" in str(refused.value)
    assert log.read_text().splitlines() == ["--port /dev/ttyUSB0 chip-id"]


def test_make_flash_names_what_is_missing(tmp_path):
    def make(*args):
        return subprocess.run(["make", "--no-print-directory", "flash"] + list(args), cwd=ROOT,
                              capture_output=True, text=True, timeout=30, check=False)

    assert "PORT is not set" in make().stderr
    assert "FIRMWARE is not set" in make("PORT=/dev/ttyUSB0").stderr
    missing = make("PORT=/dev/ttyUSB0", "FIRMWARE=" + str(tmp_path / "none.bin"))
    assert missing.returncode != 0 and "no firmware file" in missing.stderr


def test_the_firmware_manifest_freezes_exactly_the_board_lib(monkeypatch):
    calls = []
    folder = os.path.join(ROOT, "firmware")
    monkeypatch.chdir(folder)  # as MicroPython's manifest tool runs it
    with open(os.path.join(folder, "manifest.py")) as f:
        source = f.read()
    exec(compile(source, "manifest.py", "exec"), {
        "include": lambda path: calls.append(("include", path)),
        "package": lambda name, files=None, base_path=".", opt=None: calls.append(
            ("package", name, files, os.path.abspath(base_path))),
    })
    assert calls[0] == ("include", "$(PORT_DIR)/boards/manifest.py")
    assert calls[1] == ("package", "cellmqtt", [path[len("cellmqtt/"):] for path in lib_sources()],
                        os.path.join(ROOT, "lib"))
    assert len(calls) == 2
