"""The library as a ROMFS image, for a board whose firmware has a ROMFS partition: its
bytecode then runs in place from flash instead of being copied into the heap.

  python -m tools.romfs [--build DIR] [--out IMAGE]
  python -m tools.romfs --measure

Packs DIR/lib (what `make mpy` compiled, the .mpy files `make deploy` ships) into IMAGE
(default DIR/romfs.img) with `mpremote romfs build`, laid out as lib/cellmqtt/...: a
board mounts the image at /rom and has /rom/lib on sys.path. boot.py, main.py and
config.json stay on the board's file system (`make deploy-romfs` copies them).

--measure prints the resident heap after boot per transport on the 64-bit unix port
(the webassembly port has no VfsRom), measured as tools/footprint.py does, once with
the library as .mpy files and once from the image: the image is mounted before the
first reading, so its bytes (a heap block on a PC, flash on a board) are not counted.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from tools import mpy_build, venv_command
from tools.board_files import ROOT


class RomfsError(Exception):
    pass


def pack_folder(folder, image):
    """An image of what folder holds, at the image's root; returns its size in bytes."""
    result = subprocess.run([venv_command("mpremote"), "romfs", "-o", image, "build", folder],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 or not os.path.exists(image):
        raise RomfsError("mpremote romfs build failed:\n%s%s" % (result.stdout, result.stderr))
    return os.path.getsize(image)


def pack(lib, image):
    """An image of the folder lib as the image's lib/; returns its size in bytes."""
    with tempfile.TemporaryDirectory(prefix="romfs-") as stage:
        shutil.copytree(lib, os.path.join(stage, "lib"))
        return pack_folder(stage, image)


def build(image, include_pc=False):
    """Compile the library (tools/mpy_build.py) and pack it into image; with include_pc,
    with the PC halves of the port layer, for the unix port. Returns the image's size."""
    with tempfile.TemporaryDirectory(prefix="romfs-mpy-") as out:
        return pack(mpy_build.build_for_pc(out, include_pc), image)


# Run after footprint's stand-ins: the image as a board's ROMFS, instead of the .mpy files
_MOUNT = """\
import vfs
with open("romfs.img", "rb") as f:
    vfs.mount(vfs.VfsRom(f.read()), "/rom")
del f
sys.path[sys.path.index("lib")] = "/rom/lib"
"""


def measure(work):
    """({transport: {"mpy_64", "romfs_64"}}, the image's size in bytes)."""
    from tools import footprint

    root = footprint._stage(work)
    size = pack(os.path.join(root, "lib"), os.path.join(root, "romfs.img"))
    jobs = []
    for name in footprint.TRANSPORTS:
        jobs.append(("mpy " + name, footprint.boot_job(root, name)))
        steps = footprint.boot_job(root, name)
        steps.insert(1, _MOUNT)  # the first step sets up the stand-ins
        jobs.append(("romfs " + name, steps))
    figures = footprint.run_64(root, jobs, work)
    return {name: {"mpy_64": figures["mpy " + name][2], "romfs_64": figures["romfs " + name][2]}
            for name in footprint.TRANSPORTS}, size


def _print_measure():
    work = tempfile.mkdtemp(prefix="romfs-measure-")
    try:
        figures, size = measure(work)
    finally:
        shutil.rmtree(work)
    print("heap in use after boot and gc.collect(), bytes, 64-bit unix port; image %d bytes" % size)
    print("%-10s %10s %10s %8s" % ("transport", ".mpy", "ROMFS", "saved"))
    for name, row in figures.items():
        print("%-10s %10d %10d %7d%%" % (name, row["mpy_64"], row["romfs_64"],
                                         round(100 * (1 - row["romfs_64"] / row["mpy_64"]))))
    print(json.dumps({"image_bytes": size, "transports": figures}, sort_keys=True))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.romfs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), metavar="DIR",
                        help="what `make mpy` built (default build/)")
    parser.add_argument("--out", metavar="IMAGE", help="the image (default DIR/romfs.img)")
    parser.add_argument("--measure", action="store_true", help="heap after boot: .mpy files against the image")
    args = parser.parse_args(argv)
    if args.measure:
        _print_measure()
        return 0
    lib = os.path.join(args.build, "lib")
    if not os.path.isdir(lib):
        print("romfs: error: no %s: run `make mpy` first" % lib, file=sys.stderr)
        return 1
    image = args.out or os.path.join(args.build, "romfs.img")
    try:
        size = pack(lib, image)
    except RomfsError as error:
        print("romfs: error: %s" % error, file=sys.stderr)
        return 1
    print("%s: %d bytes" % (image, size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
