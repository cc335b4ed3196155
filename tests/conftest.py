"""Both lanes' tests under pytest: the loopback services each test process drives, and
a garbage collector that scans only what the running test made."""
import gc
import os
import tracemalloc

import pytest

_SERVICES = []  # this process's own tools.services set, if it started one
# The longest tests (10-60 s each, most of it waiting on a model clock or a MicroPython
# board), started first so that pytest-xdist's workers end together instead of one
# starting the soak when the other is done; the order of the rest is unchanged.
LONGEST_FIRST = (
    "tests/host/test_soak.py::test_soak_with_random_faults_keeps_every_invariant",
    "tests/host/test_fault_matrix.py::test_field_behaviour_a_20_s_boot_in_real_time",
    "tests/host/test_mqtt_cli.py::test_pub_and_sub_through_a_modem_with_every_field_behaviour",
    "tests/host/test_duty_cycle.py::test_an_oversized_command_and_a_flood_never_stop_the_uplink",
    "tests/host/test_conformance_mosquitto.py::test_idle_client_with_a_short_keepalive_is_never_dropped",
    "tests/host/test_simboard_ppp.py::test_an_ignored_escape_falls_back_to_dtr_then_to_power_off",
    "tests/host/test_footprint.py::test_the_firmware_figures_are_sane",
    "tests/host/test_fault_matrix.py::test_modem_fault_fails_the_window_cleanly_and_the_next_delivers_all",
    "tests/host/test_simboard_as_a_board.py::test_every_reading_is_delivered",
    "tests/host/test_mcu_reset.py::test_mcu_reset_mid_window_loses_nothing",
    "tests/host/test_simboard_ppp.py",
    "tests/host/test_window_faults.py::test_brownout_during_a_window_loses_nothing",
)


def pytest_configure(config):
    """Each test process drives a SIM7600 emulator of its own: a pytest-xdist worker
    (PYTEST_XDIST_WORKER set) always starts its own set of tools.services, since two
    tests driving one stateful modem at once break each other; a plain `pytest` starts
    one unless it runs under `python -m tools.services` already (CELLMQTT_MODEM set).
    The xdist controller runs no test and starts none. The addresses go into os.environ
    before any test module imports cellmqtt (port/_pc.py reads them at import)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    controller = not worker and getattr(config.option, "dist", "no") != "no"
    if controller or (not worker and os.environ.get("CELLMQTT_MODEM")):
        return
    from tools.services import Services

    services = Services().start()
    _SERVICES.append(services)
    os.environ.update(services.env)


def pytest_unconfigure(config):
    while _SERVICES:
        _SERVICES.pop().stop()


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.nodeid.split("[")[0]
        for i, prefix in enumerate(LONGEST_FIRST):
            if path == prefix or path.startswith(prefix + "::"):
                return i
        return len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a rank, the collection order


@pytest.fixture(autouse=True)
def _own_heap():
    """Each test starts with the objects that outlive tests (modules, pytest's own,
    earlier tests' fixtures) frozen out of the collector (gc.freeze), so a gc.collect()
    in the test scans only what the test made, as on a board, instead of everything the
    process imported (after numpy, hypothesis and amqtt, 1000 port.collect() calls took
    minutes); and tracemalloc, which the CPython port's mem_alloc() starts, stops after
    the test that started it, so the tests after it run untraced. Within a test both
    figures are as before: nothing is freed or counted differently."""
    tracing = tracemalloc.is_tracing()
    gc.collect()
    gc.freeze()
    yield
    if not tracing and tracemalloc.is_tracing():
        tracemalloc.stop()
