# Start-up of a simulated board, for both runtimes: the working directory is the
# board's flash; boot.py and then main.py run in one namespace, as on a board.
#   micropython|python board_start.py LIB_FOLDER
import sys

sys.path.insert(0, sys.argv[1])
namespace = {"__name__": "__main__"}
for name in ("boot.py", "main.py"):
    with open(name) as source:
        code = source.read()
    exec(code, namespace)
