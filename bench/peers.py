"""The peers, fetched at bench time, and the tree every MicroPython run imports from.

The MicroPython packages on PyPI are sdists without setup.py, so pip refuses to
install them; `pip download --no-clean --no-deps NAME` still unpacks each into its
temporary folder (here TMPDIR points into the bench's own work folder), from which
the .py files are taken. build() compiles our lib, the peers and the runners to .mpy
(bytecode, as deployed), so no run pays for compiling source in its measured heap.
"""

import glob
import os
import shutil
import subprocess
import sys

from tools import mpy_build
from tools.board_files import LIB, ROOT

WORK = os.path.join(ROOT, "bench", "work")  # git-ignored: downloads and the build
BUILD = os.path.join(WORK, "build")
MP_SOURCES = os.path.join(ROOT, "bench", "mp")
# PyPI name -> the files to take (path inside the unpacked sdist -> path in the tree)
PACKAGES = {
    "micropython-umqtt.simple": {"umqtt/simple.py": "umqtt/simple.py"},
    "micropython-umqtt.robust": {"umqtt/robust.py": "umqtt/robust.py"},
    "micropython-mqtt": {"mqtt_async.py": "mqtt_async.py"},
}
_PIP_TIMEOUT_S = 300


class FetchError(RuntimeError):
    pass


def _unpacked(name, temp):
    """Folders in pip's temporary area that hold the sdist `name`, newest first."""
    stem = name.replace(".", "-")
    found = glob.glob(os.path.join(temp, "pip-*", stem + "_*"))
    return sorted(found, key=os.path.getmtime, reverse=True)


def fetch(work=WORK):
    """Download and unpack each peer; returns {tree path: source path} and versions."""
    temp = os.path.join(work, "pip-tmp")
    shutil.rmtree(temp, ignore_errors=True)
    os.makedirs(temp)
    files = {}
    versions = {}
    for name, wanted in PACKAGES.items():
        command = [sys.executable, "-m", "pip", "download", "--no-clean", "--no-deps",
                   "-d", os.path.join(work, "downloads"), name]
        result = subprocess.run(command, env=dict(os.environ, TMPDIR=temp), capture_output=True,
                                text=True, timeout=_PIP_TIMEOUT_S, check=False)
        folders = _unpacked(name, temp)
        if not folders:
            raise FetchError("pip download %s unpacked nothing:\n%s" % (name, result.stdout + result.stderr))
        versions[name] = _version(folders[0])
        for inside, target in wanted.items():
            source = os.path.join(folders[0], inside)
            if not os.path.isfile(source):
                raise FetchError("%s has no %s" % (name, inside))
            files[target] = source
    return files, versions


def _version(folder):
    for path in glob.glob(os.path.join(folder, "*.egg-info", "PKG-INFO")) + [os.path.join(folder, "PKG-INFO")]:
        if os.path.isfile(path):
            with open(path) as info:
                for line in info:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
    return "?"


def _compile(source, target, name):
    """Peers and runners compiled as the board's own code is (mpy_build's flags), so
    that figures compare code with code."""
    ok, message = mpy_build.compile_file(source, target, name)
    if not ok:
        raise FetchError("mpy-cross %s: %s" % (name, message))


def build(peer_files, build_dir=BUILD):
    """build_dir/lib (cellmqtt), build_dir/peers, build_dir/mp (runners), all .mpy."""
    shutil.rmtree(build_dir, ignore_errors=True)
    for folder, _, names in os.walk(os.path.join(LIB, "cellmqtt")):
        for name in names:
            if name.endswith(".py"):
                relative = os.path.relpath(os.path.join(folder, name), LIB)
                _compile(os.path.join(LIB, relative), os.path.join(build_dir, "lib", relative[:-3] + ".mpy"),
                         relative)
    for target, source in peer_files.items():
        _compile(source, os.path.join(build_dir, "peers", target[:-3] + ".mpy"), target)
    for name in os.listdir(MP_SOURCES):
        if name.endswith(".py"):
            _compile(os.path.join(MP_SOURCES, name), os.path.join(build_dir, "mp", name[:-3] + ".mpy"), name)
    return build_dir
