# A runner (BENCH_RUNNER) with every module it imports read from a ROMFS image
# (BENCH_IMAGE: lib/, peers/ and mp/ of the bench's tree) instead of .mpy files copied
# into the heap: the code stays where a board keeps a ROMFS partition or frozen code, in
# flash. On a PC the image is one block, read first, at the heap's start: the bench takes
# its size off the heap figure.
import os
import sys

import vfs

_path = os.getenv("BENCH_IMAGE")
_image = bytearray(os.stat(_path)[6])
with open(_path, "rb") as _file:
    _file.readinto(_image)
vfs.mount(vfs.VfsRom(_image), "/rom")
sys.path[:] = ["/rom/mp", "/rom/lib", "/rom/peers", ".frozen"]
__import__(os.getenv("BENCH_RUNNER"))
