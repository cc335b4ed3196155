# boot.py's bare words: installing them loads no shell; the first use does. (A module
# of its own: under MicroPython it runs in a fresh process, so nothing loaded the
# shell before.)
import sys

from cellmqtt import repl


def test_install_puts_bare_words_into_a_namespace_that_load_the_shell_on_first_use():
    loaded_before = "cellmqtt.shell" in sys.modules
    namespace = {}
    repl.install(namespace)
    assert sorted(namespace) == ["free", "list_fd", "netstat"]
    assert loaded_before or "cellmqtt.shell" not in sys.modules  # installing costs no shell
    assert repr(namespace["list_fd"]).startswith("fd type    ref owner  detail")
    assert "cellmqtt.shell" in sys.modules
    assert repr(namespace["free"]).startswith("total memory: ")
    assert repr(namespace["netstat"]) == "no modem attached" or "Active links:" in repr(namespace["netstat"])
    namespace["list_fd"]()  # called, it prints
