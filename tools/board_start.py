# Start-up of a simulated board, for both runtimes: the working directory is the
# board's flash; boot.py and then main.py run in one namespace, as on a board.
#   micropython|python board_start.py (--lib FOLDER | --romfs IMAGE) [--esp32 STANDINS]
#                                     [--flash IMAGE [--unload DEST]]
# --romfs mounts IMAGE at /rom as a board mounts its ROMFS partition and imports from
# its lib/ in place (MicroPython only); --esp32 makes the board an ESP32 for cellmqtt
# (tools/esp32_standin: sys.platform, machine and network).
# --flash IMAGE (MicroPython, run through tools/flash_map.py, which maps IMAGE into
# memory) makes IMAGE the board's flash, mounted at /flash and the working directory:
# littlefs on a 2 MB partition of 4096-byte blocks as on an ESP32, formatted and given
# the working directory's files while it is erased (new). Its block device counts the
# bytes written and each block's erases after the partition in IMAGE, so a reset goes on
# counting. --unload DEST copies the flash's files to the host folder
# DEST, prints the counts as JSON ({"bytes_written", "erases": per block}) and exits.
import sys

options = dict(zip(sys.argv[1::2], sys.argv[2::2]))
asked = "-h" in sys.argv or "--help" in sys.argv
if asked or not ("--lib" in options or "--romfs" in options):  # or nowhere to import from
    with open(__file__) as source:  # the help is the comment above, kept off the board's heap
        for line in source:
            if not line.startswith("#"):
                break
            print(line[2:].rstrip())
    sys.exit(0 if asked else 2)
if "--flash" in options:
    import os
    import struct
    import uctypes
    import vfs

    try:  # the image in memory: tools/flash_map.py, which runs this, maps it
        ADDRESS, BLOCK, BLOCKS = (int(word) for word in os.getenv("CELLMQTT_FLASH").split())
    except (AttributeError, ValueError):
        print("--flash: run MicroPython through tools/flash_map.py, which maps the image")
        sys.exit(2)
    TAIL = BLOCK * BLOCKS  # then the bytes written (u64) and each block's erases (u32)

    class CountingFlash:
        """littlefs's block device (the extended protocol: erase apart from writes) on
        the mapped image. It keeps the bytes written in memory too, stored at each sync
        (the end of a littlefs operation), so a count costs no read."""

        def __init__(self):
            self.map = memoryview(uctypes.bytearray_at(ADDRESS, TAIL + 8 + 4 * BLOCKS))
            self.blank = b"\xff" * 256
            self.bytes_written = struct.unpack_from("<Q", self.map, TAIL)[0]

        def readblocks(self, block, buf, offset=0):
            at = block * BLOCK + offset
            buf[:] = self.map[at:at + len(buf)]

        def writeblocks(self, block, buf, offset=0):
            at = block * BLOCK + offset
            self.map[at:at + len(buf)] = buf
            self.bytes_written += len(buf)

        def ioctl(self, op, arg):
            if op == 3:  # sync: littlefs ends each operation that wrote with one
                struct.pack_into("<Q", self.map, TAIL, self.bytes_written)
            if op == 4:  # block count
                return BLOCKS
            if op == 5:  # block size
                return BLOCK
            if op == 6:  # erase
                at = arg * BLOCK
                for step in range(0, BLOCK, len(self.blank)):
                    self.map[at + step:at + step + len(self.blank)] = self.blank
                at = TAIL + 8 + 4 * arg
                struct.pack_into("<I", self.map, at, struct.unpack_from("<I", self.map, at)[0] + 1)
            return 0

    device = CountingFlash()
    try:
        vfs.mount(vfs.VfsLfs2(device), "/flash")
    except OSError:  # erased, as a board's flash before its first boot: formatted, then given
        vfs.VfsLfs2.mkfs(device)  # the files a deploy would put there (the host's working directory)
        vfs.mount(vfs.VfsLfs2(device), "/flash")
        for name in os.listdir():
            if os.stat(name)[0] & 0x4000 == 0:  # a file, not a folder
                with open(name, "rb") as source, open("/flash/" + name, "wb") as target:
                    target.write(source.read())
        device.map[TAIL:TAIL + 8 + 4 * BLOCKS] = bytes(8 + 4 * BLOCKS)  # the board's writes are counted,
        device.bytes_written = 0  # not its making
    os.chdir("/flash")
    if "--unload" in options:
        def unload(folder, dest):
            for name in os.listdir(folder):
                if os.stat(folder + name)[0] & 0x4000:
                    os.mkdir(dest + "/" + name)
                    unload(folder + name + "/", dest + "/" + name)
                else:
                    with open(folder + name, "rb") as source, open(dest + "/" + name, "wb") as target:
                        target.write(source.read())

        unload("/flash/", options["--unload"])
        counts = device.map[TAIL:]
        print('{"bytes_written": %d, "erases": %s}' % (
            struct.unpack_from("<Q", counts)[0], list(struct.unpack_from("<%dI" % BLOCKS, counts, 8))))
        sys.exit(0)
if "--romfs" in options:
    import vfs

    with open(options["--romfs"], "rb") as image:
        vfs.mount(vfs.VfsRom(image.read()), "/rom")
    sys.path.insert(0, "/rom/lib")
else:
    sys.path.insert(0, options["--lib"])
if "--esp32" in options:
    sys.path.append(options["--esp32"])
    import esp32_board  # noqa: F401
namespace = {"__name__": "__main__"}
for name in ("boot.py", "main.py"):
    with open(name) as source:
        code = source.read()
    exec(code, namespace)
