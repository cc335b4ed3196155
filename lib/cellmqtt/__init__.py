"""cellmqtt: leak-free cellular MQTT for MicroPython on ESP32 + SIM7600."""

VERSION = "0.1.0"


def lazy(package, names):
    """A module __getattr__ for a package that imports nothing eagerly (on a board each
    module costs heap): `names` maps a public name to the submodule that defines it;
    any other public name is a submodule (`from . import packets` comes here)."""

    def __getattr__(name):
        if name[0] == "_":
            raise AttributeError(name)  # probes for __path__, __wrapped__ ... find nothing
        module = __import__(package + "." + names.get(name, name), None, None, (name,))
        return getattr(module, name) if name in names else module

    return __getattr__


def unload(name):
    """Forget a module loaded for one job (config checking at boot): its code is heap
    that the next collection gives back, once nothing else refers to it."""
    import sys

    sys.modules.pop(name, None)
    package, _, leaf = name.rpartition(".")
    try:
        delattr(sys.modules[package], leaf)
    except (KeyError, AttributeError):
        pass
