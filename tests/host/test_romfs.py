# The library as a ROMFS image: make romfs packs what make mpy built, the unix port imports
# from it in place, make deploy-romfs refuses a board without a ROMFS partition, and the
# heap after boot is smaller from the image than from .mpy files.
import os
import subprocess

from tests.host.test_deploy import make
from tools import romfs
from tools.simboard import MICROPYTHON
from tools.vboard.process import VboardProcess

ROMFS_HEADER = b"\xd2\xcd\x31"


def test_make_romfs_packs_the_build_as_lib(tmp_path, micropython_bin):
    build = tmp_path / "build"
    result = make("romfs", "BUILD=" + str(build))
    assert result.returncode == 0, result.stdout + result.stderr
    image = build / "romfs.img"
    assert image.read_bytes()[:3] == ROMFS_HEADER
    built = sorted(os.listdir(build / "lib" / "cellmqtt"))
    listing = subprocess.run([MICROPYTHON, "-c", """\
import os, sys, vfs
vfs.mount(vfs.VfsRom(open(%r, "rb").read()), "/rom")
print(sorted(os.listdir("/rom")), sorted(os.listdir("/rom/lib/cellmqtt")))
sys.path.insert(0, "/rom/lib")
import cellmqtt.ledger
print(cellmqtt.ledger.__file__)
""" % str(image)], capture_output=True, text=True, timeout=30, check=False)
    assert listing.stdout.splitlines() == ["['lib'] %r" % built, "/rom/lib/cellmqtt/ledger.mpy"], listing


def test_deploy_romfs_refuses_a_board_without_a_romfs_partition(tmp_path, micropython_bin):
    flash = tmp_path / "flash"
    flash.mkdir()
    with VboardProcess(str(flash)) as board:  # the unix port has no ROMFS partition
        result = make("deploy-romfs", "PORT=" + board.device, "BUILD=" + str(tmp_path / "build"))
    assert result.returncode != 0
    assert "ROMFS is not enabled on this device" in result.stdout + result.stderr
    assert os.listdir(flash) == []  # nothing deployed


def test_the_image_leaves_less_of_the_library_in_the_heap(tmp_path, micropython_bin):
    figures, size = romfs.measure(str(tmp_path))
    assert size > 0 and set(figures) == {"at", "tls", "ppp"}
    for row in figures.values():
        assert 0 < row["romfs_64"] < row["mpy_64"] * 0.8, figures
