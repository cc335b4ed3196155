# The transport seam's choice at boot (config.transport_factory): a configured transport or
# TLS whose module the board's flash lacks stops the boot with a ConfigError naming
# the key and the module, instead of failing in every window.
from cellmqtt import config, transport
from cellmqtt.errors import ConfigError
from support import MICROPYTHON, raises


def _config(kind="at", tls=False):
    return {"transport": kind, "broker": {"tls": tls}}


def test_a_module_the_board_lacks_is_a_config_error_naming_key_and_file():
    error = raises(ConfigError, config.need, "cellmqtt.modem.no_such_stack", "transport")
    assert error.key == "transport" and "cellmqtt/modem/no_such_stack.py" in str(error)
    assert config.need("cellmqtt.modem.at", "transport").TIMEOUTS_MS["AT"] > 0


def test_the_modems_own_stack_for_at_and_its_tls_module_loaded_at_boot():
    import sys

    ppp_before = "cellmqtt.modem.ppp" in sys.modules
    assert config.transport_factory(_config()) is transport.ModemTransport
    assert ppp_before or "cellmqtt.modem.ppp" not in sys.modules  # AT never loads PPP
    assert config.transport_factory(_config(tls=True)) is transport.ModemTransport
    assert "cellmqtt.modem.tls" in sys.modules


def test_what_a_window_uses_is_loaded_at_boot_not_in_the_heap_of_its_first_window():
    # a module loaded inside a window stays where the window's objects were: scattered
    # code splits the heap the next windows need in one piece (TLS at 192K failed so)
    import sys

    config.transport_factory(_config(tls=True))
    config.transport_factory(_config("ppp"))
    assert "cellmqtt.modem.timeouts_tls_ppp" in sys.modules
    if MICROPYTHON:  # its asyncio loads Event and Lock at first use
        import cellmqtt.mqtt.client  # noqa: F401
        import cellmqtt.modem.at  # noqa: F401

        assert "asyncio.event" in sys.modules and "asyncio.lock" in sys.modules


def test_the_clients_send_buffer_holds_a_header_over_the_modems_links_a_publish_over_sockets():
    from cellmqtt.transport_ppp import PppTransport

    # a modem link gathers a round of writes into one send; a socket sends each write
    assert transport.ModemTransport.send_buffer == 128
    assert PppTransport.send_buffer == 512
