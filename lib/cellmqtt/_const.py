# `const` inlines integers under MicroPython; elsewhere it is the identity.
# Detected by implementation name: a PC venv may hold a module named `micropython`.
import sys

if sys.implementation.name == "micropython":
    from micropython import const
else:

    def const(value):  # type: ignore[misc]  # the stub's generic signature
        return value
