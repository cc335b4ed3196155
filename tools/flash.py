"""Flash a MicroPython firmware image onto an ESP32 with esptool.

  python -m tools.flash --port PORT [--baud 460800] [--dry-run] FIRMWARE

Checks, in order: FIRMWARE exists and is an ESP image (first byte 0xE9) and names the
chip it was built for (the chip id in its extended header); the board answers
`esptool chip-id` and is that chip. Then it erases the whole flash and writes the image
at the chip's bootloader offset, where a MicroPython firmware.bin begins (ESP32 and
ESP32-S2: 0x1000; ESP32-S3, -C3, -C6: 0x0; esptool's own table). --dry-run prints the
esptool command lines, from the image's chip, and runs none.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys

from tools import venv_command

from esptool.targets import CHIP_DEFS

ESP_IMAGE_MAGIC = 0xE9
_HEADER_SIZE = 24  # esp_image_header_t: 8 bytes, then the 16-byte extended header
_CHIP_ID_AT = 12  # little-endian uint16 in the extended header
_PROBE_TIMEOUT_S = 60
_FLASH_TIMEOUT_S = 600
_CONNECTED = re.compile(r"Connected to (\S+) on ")


class FlashError(Exception):
    pass


def image_chip(firmware):
    """esptool's name for the chip the image was built for ("esp32", "esp32s3" ...)."""
    if not os.path.isfile(firmware):
        raise FlashError("no firmware file %s" % firmware)
    with open(firmware, "rb") as f:
        header = f.read(_HEADER_SIZE)
    if len(header) < _HEADER_SIZE or header[0] != ESP_IMAGE_MAGIC:
        raise FlashError("%s is not an ESP32 firmware image: it must begin with byte 0x%02X, not %s"
                         % (firmware, ESP_IMAGE_MAGIC, "0x%02X" % header[0] if header else "nothing"))
    chip_id = header[_CHIP_ID_AT] | header[_CHIP_ID_AT + 1] << 8
    for name, chip in CHIP_DEFS.items():
        if getattr(chip, "IMAGE_CHIP_ID", None) == chip_id:
            return name
    raise FlashError("%s is built for a chip esptool does not know (chip id %d)" % (firmware, chip_id))


def chip_named(chip_name):
    """esptool's short name for the name it prints ("ESP32-S3" -> "esp32s3"), or None."""
    for name, chip in CHIP_DEFS.items():
        if chip.CHIP_NAME == chip_name:
            return name
    return None


def commands(port, firmware, chip, baud, tool, connect_attempts=None):
    """The esptool command lines: probe, erase, write."""
    probe = [tool, "--port", port]
    if connect_attempts is not None:
        probe += ["--connect-attempts", str(connect_attempts)]
    probe.append("chip-id")
    erase = [tool, "--chip", chip, "--port", port, "erase-flash"]
    offset = "0x%x" % CHIP_DEFS[chip].BOOTLOADER_FLASH_OFFSET
    write = [tool, "--chip", chip, "--port", port, "--baud", str(baud), "write-flash", offset, firmware]
    return probe, erase, write


def probe_chip(probe, port):
    """The chip that answers on port, as esptool's short name."""
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise FlashError("esptool got no answer from %s within %d s" % (port, _PROBE_TIMEOUT_S))
    out = result.stdout + result.stderr
    print(result.stdout, end="")
    if result.returncode != 0:
        reason = [line for line in out.splitlines() if "error" in line.lower()] or out.splitlines()[-1:]
        raise FlashError("no ESP chip answers on %s: %s\nCheck the port and the cable; if the board "
                         "does not enter its bootloader by itself, hold BOOT (IO0) and press EN/RESET."
                         % (port, " ".join(reason).strip()))
    found = _CONNECTED.search(out)
    chip = chip_named(found.group(1)) if found else None
    if chip is None:
        raise FlashError("esptool did not name the chip on %s:\n%s" % (port, out))
    return chip


def run(command):
    print("$", shlex.join(command), flush=True)
    try:
        code = subprocess.run(command, timeout=_FLASH_TIMEOUT_S, check=False).returncode
    except subprocess.TimeoutExpired:
        raise FlashError("%s did not finish within %d s" % (command[-1], _FLASH_TIMEOUT_S))
    if code != 0:
        raise FlashError("esptool failed (exit %d): %s" % (code, shlex.join(command)))


def flash(port, firmware, baud, dry_run=False, tool=None, connect_attempts=None):
    tool = tool or venv_command("esptool")
    chip = image_chip(firmware)
    probe, erase, write = commands(port, firmware, chip, baud, tool, connect_attempts)
    if dry_run:
        for command in (probe, erase, write):
            print(shlex.join(command))
        return
    print("$", shlex.join(probe), flush=True)
    found = probe_chip(probe, port)
    if found != chip:
        raise FlashError("%s is built for %s, but the board on %s is %s: get the image for %s"
                         % (firmware, CHIP_DEFS[chip].CHIP_NAME, port, CHIP_DEFS[found].CHIP_NAME,
                            CHIP_DEFS[found].CHIP_NAME))
    run(erase)
    run(write)
    print("flashed %s at %s: the board restarts into MicroPython" % (firmware, write[-2]))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.flash", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("firmware", help="a MicroPython ESP32 image (firmware.bin)")
    parser.add_argument("--port", required=True, help="the board's serial device")
    parser.add_argument("--baud", type=int, default=460800, help="baud rate for writing (default 460800)")
    parser.add_argument("--dry-run", action="store_true", help="print the esptool commands, run none")
    parser.add_argument("--esptool", help="the esptool command (default: the one beside this Python)")
    parser.add_argument("--connect-attempts", type=int, metavar="N",
                        help="esptool's attempts to reach the chip (default: esptool's own, 7)")
    args = parser.parse_args(argv)
    try:
        flash(args.port, args.firmware, args.baud, args.dry_run, args.esptool, args.connect_attempts)
    except FlashError as error:
        print("flash: error: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
