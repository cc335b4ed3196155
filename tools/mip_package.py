"""package.json for `mpremote mip install`: the board's lib files, and the version from
lib/cellmqtt/__init__.py.

  python -m tools.mip_package          write package.json
  python -m tools.mip_package --check  exit 1 if package.json is stale

URLs are relative to package.json, so one file serves `mpremote mip install
github:OWNER/REPO` and a local path (`mpremote mip install path/to/package.json`).
"""

import argparse
import json
import os
import re
import sys

from tools.board_files import LIB, ROOT, lib_sources

PATH = os.path.join(ROOT, "package.json")


def version():
    with open(os.path.join(LIB, "cellmqtt", "__init__.py")) as f:
        found = re.search(r'^VERSION = "([^"]+)"', f.read(), re.M)
    if not found:
        raise SystemExit("no VERSION = \"...\" in lib/cellmqtt/__init__.py")
    return found.group(1)


def render():
    """The text of package.json, one file per line."""
    urls = ",\n".join("    " + json.dumps([relative, "lib/" + relative]) for relative in lib_sources())
    return '{\n  "urls": [\n%s\n  ],\n  "deps": [],\n  "version": %s\n}\n' % (urls, json.dumps(version()))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.mip_package", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if package.json is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = open(PATH).read() if os.path.exists(PATH) else ""
        if current != text:
            print("package.json is stale: run `make package-json`", file=sys.stderr)
            return 1
        return 0
    with open(PATH, "w") as f:
        f.write(text)
    print("package.json: %d files, version %s" % (len(json.loads(text)["urls"]), version()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
