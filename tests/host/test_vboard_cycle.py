# The whole path a user takes, without hardware: deploy the firmware to the virtual board
# (wired to the SIM7600 emulator), soft-reset it so main.py runs a duty cycle to a real
# broker, soft-reset it again mid-run, and see the next cycle deliver the rest.
import time

import pytest

from tests.host.duty_lab import duty_cycle_lab, virtual_board_files
from tools import deploy
from tools.vboard.process import VboardProcess

TIME_SCALE = "0.002"
DEVICE = "vboard01"
_WAIT_S = 60


@pytest.fixture
def bench(tmp_path, micropython_bin):
    with duty_cycle_lab(TIME_SCALE) as lab:
        yield lab


def _wait_for_readings(subscriber, count):
    for _ in range(_WAIT_S * 20):
        if len(set(subscriber.seqs(DEVICE))) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("only %d readings arrived" % len(set(subscriber.seqs(DEVICE))))


def test_deployed_firmware_runs_its_duty_cycle_across_a_soft_reset(bench, tmp_path):
    broker, emulator, subscriber = bench
    build, flash = virtual_board_files(tmp_path, broker, DEVICE, TIME_SCALE)
    args = ["--modem", emulator.uart, "--control", emulator.control]
    with VboardProcess(flash, args, env={"CELLMQTT_TIME_SCALE": TIME_SCALE}) as vboard:
        deploy.deploy(vboard.device, build)
        deploy.soft_reset(vboard.device)
        _wait_for_readings(subscriber, 5)  # the first window
        deploy.soft_reset(vboard.device)  # interrupts main.py wherever it is
        _wait_for_readings(subscriber, 10)  # a window after the reset
    seqs = subscriber.seqs(DEVICE)
    assert sorted(set(seqs))[:10] == list(range(1, 11))
    assert emulator.state()["links"] == []
