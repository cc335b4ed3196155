# Runs one job on the MicroPython unix port, for tools/footprint.py: the code strings of
# the JSON list in argv[1], in turn, in this module's globals (as run.mjs runs them);
# "await X" runs X to its end on the asyncio the steps imported.
import json
import sys

with open(sys.argv[1]) as f:
    steps = json.loads(f.read())
for step in steps:
    if step.startswith("await "):
        sys.modules["asyncio"].get_event_loop().run_until_complete(eval(step[6:]))
    else:
        exec(step)
