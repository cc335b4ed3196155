"""MicroPython with the simulated board's flash in memory, for tools/board_start.py --flash.

  .venv-micropython/bin/python3 tools/flash_map.py MICROPYTHON_ARGUMENTS... --flash IMAGE ...

The unix port from PyPI is a CPython extension (micropython_module), so its venv's python3
can map the file IMAGE (made erased, as a new board's flash is, when missing) and run
MicroPython with the mapping's address and geometry in CELLMQTT_FLASH. littlefs's block
device then reads and writes memory outside MicroPython's heap, without a system call an
access (a window reads blocks about 1,300 times), and the mapping is shared: each write is
in the file at once, where the next process of the board (a reset) and the host find it,
a kill included. The file: BLOCKS blocks of BLOCK bytes, then the bytes written (u64) and
each block's erases (u32), counted by the block device."""

import ctypes
import mmap
import os
import sys

BLOCK = 4096
BLOCKS = 512  # 2 MB: an ESP32's littlefs partition on a 4 MB module
COUNTS = 8 + 4 * BLOCKS


def main(argv):
    if "--flash" not in argv[:-1] or "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0 if "-h" in argv or "--help" in argv else 2
    from micropython_module import run_main  # the MicroPython venv's (its `micropython` runs it too)

    image = argv[argv.index("--flash") + 1]
    if not os.path.exists(image):
        with open(image, "wb") as f:
            f.write(b"\xff" * (BLOCK * BLOCKS) + bytes(COUNTS))
    with open(image, "r+b") as f:
        flash = mmap.mmap(f.fileno(), BLOCK * BLOCKS + COUNTS)
    address = ctypes.addressof(ctypes.c_char.from_buffer(flash))
    os.environ["CELLMQTT_FLASH"] = "%d %d %d" % (address, BLOCK, BLOCKS)
    return run_main(["micropython"] + argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
