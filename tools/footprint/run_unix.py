# Runs one job on the MicroPython unix port, for tools/footprint.py: the code strings of
# the JSON list in argv[1], in turn, in this module's globals (as run.mjs runs them).
import json
import sys

with open(sys.argv[1]) as f:
    steps = json.loads(f.read())
for step in steps:
    exec(step)
