import os

import pytest

from tools.board_files import ROOT

MICROPYTHON = os.path.join(ROOT, ".venv-micropython", "bin", "micropython")


@pytest.fixture
def micropython_bin():
    if not os.path.exists(MICROPYTHON):
        pytest.fail("the MicroPython unix port is missing: run `make deps`")
    return MICROPYTHON


@pytest.fixture
def new_lab(request):
    """new_lab(address, **client_defaults): a Lab (tests/host/brokers.py) with topics and
    client ids of this test's own; at the end no stream or ledger entry may be left."""
    import re

    from tests.host.brokers import Lab

    labs = []

    def make(address, **defaults):
        name = re.sub(r"[^A-Za-z0-9]+", "_", request.node.name).strip("_")
        lab = Lab(address, "c/%s/%d" % (name, len(labs)), **defaults)
        labs.append(lab)
        return lab

    yield make
    held = [item for lab in labs for item in lab.leftovers()]
    assert held == [], held
