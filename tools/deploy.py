"""Copy the compiled app to a board with mpremote, only what changed, then soft-reset it.

  python -m tools.deploy --port PORT [--build DIR] [--app-only] [--force]
  python -m tools.deploy --port PORT --reset-only

Deploys what `make mpy` put in DIR (default build/): lib/**.mpy, boot.py, main.py and
config.json. The board keeps a manifest of what deploy wrote, /.deployed.json (board path
-> sha256). A file is copied when its hash differs from the manifest's; a file the manifest
lists that the build no longer has is removed (files deploy never wrote are left alone).
The manifest is removed before copying and written after, so an interrupted deploy copies
everything the next time. A board running the unix port (the virtual board) also gets the
PC half of the port layer, compiled here. `--app-only` leaves the library out (and removes
a deployed one), for a firmware with cellmqtt frozen in. Last, always, a soft reset from
the friendly REPL, so that boot.py and main.py run as after power-on.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

from tools import mpy_build, venv_command
from tools.board_files import APP_FILES, LIB, PC_PORT, ROOT

MANIFEST = ".deployed.json"
CONFIG_FILE = "config.json"
_READ_TIMEOUT_S = 30
_COPY_TIMEOUT_S = 300  # a whole library over a 115200-baud UART, with room to spare
_RESET_TIMEOUT_S = 10
_TAG = "DEPLOYED"

# Prints the board's platform and manifest on one line; a missing manifest is empty.
_READ_SCRIPT = """\
import sys
try:
    f = open('/%s')
    m = f.read()
    f.close()
except OSError:
    m = '{}'
print('%s', sys.platform, m)
""" % (MANIFEST, _TAG)

# Drops the manifest first (an interrupted deploy must not trust it), then stale files,
# then makes the folders the new files need.
_PREPARE_SCRIPT = """\
import os
for p in %r:
    try:
        os.remove(p)
    except OSError:
        pass
for d in %r:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""


class DeployError(Exception):
    pass


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def build_files(build, app_only=False):
    """{board path: local path} of everything in the build that goes on the board."""
    if not os.path.isdir(build):
        raise DeployError("no build folder %s: run `make mpy` first" % build)
    found = {}
    for name in APP_FILES + (CONFIG_FILE,):
        if os.path.exists(os.path.join(build, name)):
            found[name] = os.path.join(build, name)
    if not app_only:
        for folder, _, names in os.walk(os.path.join(build, "lib")):
            for name in names:
                if name.endswith(".mpy"):
                    path = os.path.join(folder, name)
                    found[os.path.relpath(path, build).replace(os.sep, "/")] = path
        if not any(path.startswith("lib/") for path in found):
            raise DeployError("%s has no lib/: run `make mpy` first" % build)
    return found


def pc_port_files(out):
    """The PC half of the port layer compiled into out: the unix port needs it."""
    found = {}
    for relative in PC_PORT:
        target = os.path.join(out, "lib", relative[:-3] + ".mpy")
        ok, message = mpy_build.compile_file(os.path.join(LIB, relative), target, relative)
        if not ok:
            raise DeployError(message)
        found["lib/" + relative[:-3] + ".mpy"] = target
    return found


def run_mpremote(port, args, timeout_s):
    command = [venv_command("mpremote"), "connect", port] + args
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                                check=False, cwd=ROOT)
    except subprocess.TimeoutExpired:
        raise DeployError("mpremote gave no answer from %s within %d s" % (port, timeout_s))
    if result.returncode != 0:
        raise DeployError("mpremote failed on %s:\n%s%s" % (port, result.stdout, result.stderr))
    return result.stdout


def read_board(port):
    """(sys.platform, the manifest of what was deployed) from the board."""
    out = run_mpremote(port, ["exec", _READ_SCRIPT], _READ_TIMEOUT_S)
    for line in out.splitlines():
        if line.startswith(_TAG + " "):
            _, platform, text = line.split(" ", 2)
            try:
                manifest = json.loads(text)
            except ValueError:
                manifest = {}
            return platform, manifest if isinstance(manifest, dict) else {}
    raise DeployError("the board on %s did not answer as MicroPython does: %r" % (port, out))


def plan(hashes, deployed, force=False):
    """(board paths to copy, board paths to remove), both sorted."""
    copy = sorted(path for path, digest in hashes.items() if force or deployed.get(path) != digest)
    remove = sorted(path for path in deployed if path not in hashes)
    return copy, remove


def folders_for(paths):
    """Every folder the paths need on the board, parents first."""
    needed = set()
    for path in paths:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            needed.add("/" + "/".join(parts[:depth]))
    return sorted(needed, key=lambda folder: (folder.count("/"), folder))


def copy_files(port, files, hashes, copy, remove):
    prepare = _PREPARE_SCRIPT % (["/" + MANIFEST] + ["/" + path for path in remove], folders_for(copy))
    with tempfile.TemporaryDirectory(prefix="deploy-") as scratch:
        manifest = os.path.join(scratch, MANIFEST)
        with open(manifest, "w") as f:
            json.dump(hashes, f, sort_keys=True, separators=(",", ":"))
        args = ["exec", prepare]
        for path in copy:
            args += ["+", "fs", "cp", files[path], ":/" + path]
        args += ["+", "fs", "cp", manifest, ":/" + MANIFEST]
        run_mpremote(port, args, _COPY_TIMEOUT_S)


def soft_reset(port):
    """A soft reset from the friendly REPL, so that main.py runs (mpremote's own
    soft-reset stays in the raw REPL, where a board skips main.py): Ctrl-C stops what
    runs, Ctrl-B leaves the raw REPL (or redraws the friendly one), Ctrl-D resets."""
    from mpremote.transport_serial import SerialTransport

    transport = SerialTransport(port, baudrate=115200)
    try:
        transport.serial.write(b"\x03\x02\x04")
        seen = transport.read_until(1, b"soft reboot\r\n", timeout_overall=_RESET_TIMEOUT_S)
    finally:
        transport.close()
    if not seen.endswith(b"soft reboot\r\n"):
        raise DeployError("no soft reboot from %s within %d s: %r" % (port, _RESET_TIMEOUT_S, seen[-200:]))


def deploy(port, build, app_only=False, force=False):
    files = build_files(build, app_only)
    platform, deployed = read_board(port)
    with tempfile.TemporaryDirectory(prefix="deploy-pc-") as scratch:
        if platform == "linux" and not app_only:
            files.update(pc_port_files(scratch))
        hashes = {path: sha256(local) for path, local in files.items()}
        copy, remove = plan(hashes, deployed, force)
        print("board on %s (%s): %d files deployed before, %d in this build"
              % (port, platform, len(deployed), len(hashes)))
        for path in copy:
            print("  copy   /%s (%d bytes)" % (path, os.path.getsize(files[path])))
        for path in remove:
            print("  remove /%s" % path)
        if copy or remove:
            copy_files(port, files, hashes, copy, remove)
    print("%d copied, %d removed, %d unchanged" % (len(copy), len(remove), len(hashes) - len(copy)))
    return copy, remove


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", required=True, help="the board's serial device (or a vboard's PTY)")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), metavar="DIR",
                        help="what `make mpy` built (default build/)")
    parser.add_argument("--app-only", action="store_true", help="boot.py, main.py, config.json only")
    parser.add_argument("--force", action="store_true", help="copy every file, whatever the manifest says")
    parser.add_argument("--reset-only", action="store_true", help="only the soft reset")
    args = parser.parse_args(argv)
    if args.port.startswith("/dev/") and not os.path.exists(args.port):
        print("deploy: error: no device %s (plugged in? for the virtual board, give the PTY it printed)"
              % args.port, file=sys.stderr)
        return 2
    try:
        if not args.reset_only:
            deploy(args.port, args.build, args.app_only, args.force)
        # Always: reading the manifest through mpremote has stopped main.py.
        soft_reset(args.port)
    except DeployError as error:
        print("deploy: error: %s" % error, file=sys.stderr)
        return 1
    print("soft reset: boot.py and main.py run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
