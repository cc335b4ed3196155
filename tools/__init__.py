"""Host tools: emulator, simulated and virtual boards, build, deploy and flash helpers."""

import os
import sys


def venv_command(name):
    """A command installed beside the running interpreter (the project's venv), else
    whatever of that name is on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    return beside if os.path.exists(beside) else name
