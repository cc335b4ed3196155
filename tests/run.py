# The test runner for both runtimes. Under MicroPython it is the whole lane; under
# CPython pytest runs the same modules. Host-only tests live in tests/host/.
#
#   micropython tests/run.py [--lib DIR] [--leak N] [module | module.test ...]
#
# --lib DIR imports cellmqtt from DIR (tools.mp_lane gives it the .mpy files a board
# gets), else from the source in lib/. --leak N runs each selected test N more times
# after warm-up and reports the bytes it retained after gc (exact under MicroPython);
# any retention fails.
import gc
import os
import sys

HERE = __file__.rpartition("/")[0] or "."
if not HERE.startswith("/"):  # a test that changes folder (test_app) still imports from here
    HERE = os.getcwd() + "/" + HERE
ARGS = sys.argv[1:]
LIB = HERE + "/../lib"
if ARGS[:1] == ["--lib"]:
    LIB = ARGS[1]
    ARGS = ARGS[2:]
sys.path.insert(0, HERE)
sys.path.insert(0, LIB)

from support import retained_bytes  # noqa: E402


def _print_exception(error):
    if hasattr(sys, "print_exception"):
        sys.print_exception(error)
    else:
        import traceback

        traceback.print_exception(type(error), error, error.__traceback__)


def _modules(selection):
    if selection:
        names = [item.split(".")[0] for item in selection]
        return sorted(set(names))
    return sorted(name[:-3] for name in os.listdir(HERE) if name.startswith("test_") and name.endswith(".py"))


def _tests(module_name, selection):
    module = __import__(module_name)
    wanted = [item.split(".", 1)[1] for item in selection if item.startswith(module_name + ".")]
    names = sorted(name for name in dir(module) if name.startswith("test_"))
    for name in names:
        if wanted and name not in wanted:
            continue
        yield module_name + "." + name, getattr(module, name)


def main(argv):
    leak_repetitions = 0
    if argv[:1] == ["--leak"]:
        leak_repetitions = int(argv[1])
        argv = argv[2:]
    passed = failed = 0
    for module_name in _modules(argv):
        for full_name, test in _tests(module_name, argv):
            try:
                test()
                if leak_repetitions:
                    retained = retained_bytes(test, leak_repetitions)
                    print("leak", full_name, retained, "bytes over", leak_repetitions, "runs")
                    if retained:
                        raise AssertionError("retained %d bytes" % retained)
            except Exception as error:  # a failing test is reported, never fatal
                failed += 1
                print("FAIL", full_name)
                _print_exception(error)
            else:
                passed += 1
                print("ok  ", full_name)
            gc.collect()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


sys.exit(main(ARGS))
