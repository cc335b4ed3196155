# Start-up of a simulated board, for both runtimes: the working directory is the
# board's flash; boot.py and then main.py run in one namespace, as on a board.
#   micropython|python board_start.py (--lib FOLDER | --romfs IMAGE) [--esp32 STANDINS]
# --romfs mounts IMAGE at /rom as a board mounts its ROMFS partition and imports from
# its lib/ in place (MicroPython only); --esp32 makes the board an ESP32 for cellmqtt
# (tools/esp32_standin: sys.platform, machine and network).
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
