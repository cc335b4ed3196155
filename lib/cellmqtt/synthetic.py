"""A repeatable stand-in sensor for a PC (tests, the simulated fleet): a board never
ships it (tools/board_files.py PC_ONLY)."""


class SyntheticSensor:
    """A temperature that walks in a sawtooth, and a count of readings."""

    def __init__(self, start_c10=215):
        self._count = 0
        self._start = start_c10

    def read(self):
        self._count += 1
        return {"temp_c10": self._start + self._count % 20, "n": self._count}
