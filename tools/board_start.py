# Start-up of a simulated board, for both runtimes: the working directory is the
# board's flash; boot.py and then main.py run in one namespace, as on a board.
#   micropython|python board_start.py (--lib FOLDER | --romfs IMAGE) [--esp32 STANDINS]
#                                     [--flash IMAGE [--unload DEST]]
# --romfs mounts IMAGE at /rom as a board mounts its ROMFS partition and imports from
# its lib/ in place (MicroPython only); --esp32 makes the board an ESP32 for cellmqtt
# (tools/esp32_standin: sys.platform, machine and network).
# --flash IMAGE (MicroPython) makes IMAGE the board's flash, mounted at /flash and the
# working directory: littlefs on a 2 MB partition of 4096-byte blocks as on an ESP32,
# made and given the working directory's files when IMAGE is new. Its block device
# counts the bytes written and each block's erases after the partition in IMAGE, so a
# reset goes on counting. --unload DEST copies the flash's files to the host folder
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
    import vfs

    BLOCK = 4096
    BLOCKS = 512
    TAIL = BLOCK * BLOCKS  # then the bytes written (u64) and each block's erases (u32)

    class CountingFlash:
        """littlefs's block device (the extended protocol: erase apart from writes). It
        seeks only when the file is not already where an access begins, and keeps the
        bytes written in memory too, written to the file at each sync (the end of a
        littlefs operation), so a count costs one write, not a read and a write."""

        def __init__(self, path):
            self.file = open(path, "r+b")
            self.at = 0  # the file's position
            self.cell = bytearray(8)
            self.blank = b"\xff" * 256
            self.bytes_written = self.read_count(TAIL, "<Q")

        def seek(self, at):
            if at != self.at:
                self.file.seek(at)
                self.at = at

        def readblocks(self, block, buf, offset=0):
            at = block * BLOCK + offset  # the seek inline: littlefs reads a window's blocks 1,300 times
            if at != self.at:
                self.file.seek(at)
            self.at = at + self.file.readinto(buf)

        def writeblocks(self, block, buf, offset=0):
            self.seek(block * BLOCK + offset)
            self.at += self.file.write(buf)
            self.bytes_written += len(buf)

        def ioctl(self, op, arg):
            if op == 3:  # sync: littlefs ends each operation that wrote with one
                struct.pack_into("<Q", self.cell, 0, self.bytes_written)
                self.seek(TAIL)
                self.at += self.file.write(self.cell)
            if op == 4:  # block count
                return BLOCKS
            if op == 5:  # block size
                return BLOCK
            if op == 6:  # erase
                self.seek(arg * BLOCK)
                for _ in range(BLOCK // len(self.blank)):
                    self.at += self.file.write(self.blank)
                at = TAIL + 8 + 4 * arg
                struct.pack_into("<I", self.cell, 0, self.read_count(at, "<I") + 1)
                self.seek(at)
                self.at += self.file.write(memoryview(self.cell)[:4])
            return 0

        def read_count(self, at, kind):
            self.seek(at)
            self.at += self.file.readinto(self.cell)
            return struct.unpack_from(kind, self.cell)[0]

    image = options["--flash"]
    try:
        new = not os.stat(image)[6]  # its size
    except OSError:
        new = True
    if new:
        with open(image, "wb") as f:
            for _ in range(BLOCKS * BLOCK // 256):
                f.write(b"\xff" * 256)
            f.write(bytes(8 + 4 * BLOCKS))
    device = CountingFlash(image)
    if new:
        vfs.VfsLfs2.mkfs(device)
    vfs.mount(vfs.VfsLfs2(device), "/flash")
    if new:  # the host's working directory holds the files a deploy would put on flash
        for name in os.listdir():
            if os.stat(name)[0] & 0x4000 == 0:  # a file, not a folder
                with open(name, "rb") as source, open("/flash/" + name, "wb") as target:
                    target.write(source.read())
        device.seek(TAIL)  # what the board writes is counted, not its making
        device.at += device.file.write(bytes(8 + 4 * BLOCKS))
        device.bytes_written = 0
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
        device.seek(TAIL)
        counts = device.file.read(8 + 4 * BLOCKS)
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
