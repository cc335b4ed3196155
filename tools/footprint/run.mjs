// Runs jobs on the 32-bit MicroPython (webassembly port), for tools/footprint.py.
// stdin: {"heapsize": bytes, "root": host folder, "jobs": [[code, ...], ...]}
// Each job gets a fresh interpreter whose file system holds a copy of root at "/";
// each code string is one runPython call (a collection frees what an earlier call
// allocated, never what its own call did); one that starts with "await " goes through
// runPythonAsync and is awaited (this port's asyncio runs on node's event loop). stdout:
// one JSON line per job,
// {"out": what it printed, "error": the traceback that stopped it, or null}.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

function copyTree(mp, host, target) {
  mp.FS.mkdirTree(target);
  for (const name of readdirSync(host)) {
    const path = join(host, name);
    const inside = (target === "/" ? "" : target) + "/" + name;
    if (statSync(path).isDirectory()) {
      copyTree(mp, path, inside);
    } else {
      mp.FS.writeFile(inside, readFileSync(path));
    }
  }
}

const request = JSON.parse(readFileSync(0, "utf8"));
for (const steps of request.jobs) {
  let out = "";
  const mp = await loadMicroPython({
    heapsize: request.heapsize,
    stdout: (text) => { out += text + "\n"; },
    stderr: (text) => { out += text + "\n"; },
  });
  copyTree(mp, request.root, "/");
  let error = null;
  for (const code of steps) {
    try {
      if (code.startsWith("await ")) {
        await mp.runPythonAsync(code);
      } else {
        mp.runPython(code);
      }
    } catch (e) {
      error = String(e.message || e);
      break;
    }
  }
  process.stdout.write(JSON.stringify({ out, error }) + "\n");
}
