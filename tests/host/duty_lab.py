# The bench of the duty-cycle tests: mosquitto, the SIM7600 emulator with its modem off,
# and an independent subscriber on the data topics; optionally this process's port layer
# pointed at that emulator (for a DutyCycle run in-process).
import contextlib
import json
import os
import shutil

from cellmqtt import port
from tools import mpy_build
from tools.board_files import ROOT
from tools.services import EmulatorProcess, Mosquitto
from tools.simboard import Subscriber, board_config


@contextlib.contextmanager
def duty_cycle_lab(time_scale="0", configure_port=False):
    """Yields (broker, emulator, subscriber); stops all three, restores the port."""
    with contextlib.ExitStack() as stack:
        broker = Mosquitto().start()
        stack.callback(broker.stop)
        emulator = EmulatorProcess("--power", "off", "--time-scale", time_scale).start()
        stack.callback(emulator.stop)
        subscriber = Subscriber(broker.address)
        stack.callback(subscriber.stop)
        if configure_port:
            port.configure(modem=emulator.uart, control=emulator.control)
            stack.callback(port.configure, modem=os.environ.get("CELLMQTT_MODEM"),
                           control=os.environ.get("CELLMQTT_CONTROL"))
        yield broker, emulator, subscriber


def virtual_board_files(tmp_path, broker, device, time_scale):
    """The firmware as make deploy ships it, with a config.json for this broker and
    device at this time scale, and an empty flash folder: (build folder, flash folder)."""
    build = str(tmp_path / "build")
    total, failures = mpy_build.build(build)
    assert failures == [] and total > 0
    config = board_config(broker.address, float(time_scale))
    config["device_id"] = device
    with open(os.path.join(build, "config.json"), "w") as f:
        json.dump(config, f)
    flash = tmp_path / "flash"
    flash.mkdir()
    return build, str(flash)


def board_flash(tmp_path, config):
    """A simulated board's flash folder: boot.py, main.py, this config.json and the
    library as the .mpy files a board gets."""
    flash = tmp_path / "flash"
    flash.mkdir()
    for name in ("boot.py", "main.py"):
        shutil.copy(os.path.join(ROOT, name), flash)
    (flash / "config.json").write_text(json.dumps(config))
    mpy_build.build_for_pc(str(flash))
    return flash
