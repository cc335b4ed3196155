"""Stand-ins for what a board has and the PC's MicroPython lacks, registered under
their real names in sys.modules before anything is measured (tools/footprint.py)."""
