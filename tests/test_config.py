# config.json validation: every rule, with the exact key named in the error.
import binascii
import os

from cellmqtt import config, port
from cellmqtt.errors import ConfigError
from cellmqtt.memwatch import MemWatch
from support import raises

HERE = __file__.rpartition("/")[0] or "."
EXAMPLE = HERE + "/../config.example.json"


def _minimal():
    return {"apn": "internet", "broker": {"host": "broker.example.com"}}


def _with(dotted, value, raw=None):
    """A minimal configuration with one key (a dotted path) set to value."""
    raw = _minimal() if raw is None else raw
    section = raw
    keys = dotted.split(".")
    for key in keys[:-1]:
        section = section.setdefault(key, {})
    section[keys[-1]] = value
    return raw


def _error(raw, device_id="0a1b2c3d4e5f"):
    return raises(ConfigError, config.validate, raw, device_id)


def _key(raw, device_id="0a1b2c3d4e5f"):
    return _error(raw, device_id).key


def test_the_example_file_is_a_valid_lilygo_configuration():
    loaded = config.load(EXAMPLE, "0a1b2c3d4e5f")
    assert loaded["pins"] == {"pwrkey": 4, "flight": 25, "status": 34, "dtr": 32, "ri": 33,
                              "power_en": None, "reset": None, "battery_adc": 35}
    assert loaded["uart"]["tx"] == 27 and loaded["uart"]["rx"] == 26 and loaded["uart"]["baud"] == 115200
    assert loaded["topics"]["data"] == "cellmqtt/0a1b2c3d4e5f/data"
    # complete: every key of the schema is spelled out in the example
    with open(EXAMPLE) as f:
        text = f.read()
    for section, spec in config.SCHEMA.items():
        assert '"%s"' % section in text, section
        if type(spec) is dict:
            for key in spec:
                assert '"%s"' % key in text, section + "." + key


def test_defaults_are_filled_in_and_the_device_id_resolved():
    loaded = config.validate(_minimal(), "0a1b2c3d4e5f")
    assert loaded["device_id"] == "0a1b2c3d4e5f" and loaded["broker"]["client_id"] == "0a1b2c3d4e5f"
    assert loaded["broker"]["port"] == 1883 and loaded["broker"]["keepalive_s"] == 60
    assert loaded["topics"] == {"data": "cellmqtt/0a1b2c3d4e5f/data", "health": "cellmqtt/0a1b2c3d4e5f/health",
                                "command": "cellmqtt/0a1b2c3d4e5f/command",
                                "status": "cellmqtt/0a1b2c3d4e5f/status"}
    assert loaded["queue"]["max_readings"] == 1000 and loaded["sleep"]["mode"] == "light"
    assert loaded["transport"] == "at" and loaded["upload"]["period_s"] is None
    assert MemWatch(loaded["memwatch"]).window == 32  # memwatch's own keys, with their defaults
    # the configured id wins over the hardware's; an explicit client id over both
    raw = _with("device_id", "pump-7", _with("broker.client_id", "pump-7-client"))
    loaded = config.validate(raw, "0a1b2c3d4e5f")
    assert loaded["device_id"] == "pump-7" and loaded["broker"]["client_id"] == "pump-7-client"
    assert loaded["topics"]["status"] == "cellmqtt/pump-7/status"


def test_the_hardware_id_is_the_default_device_id():
    assert config.validate(_minimal())["device_id"] == port.unique_id()


def test_missing_required_keys():
    assert _key({"broker": {"host": "h"}}) == "apn"
    assert _key({"apn": "internet"}) == "broker.host"
    assert _key({"apn": "internet", "broker": {}}) == "broker.host"
    assert "required" in str(_error({"apn": "internet"}))
    assert config.validate(_with("apn", ""))["apn"] == ""  # the network's default APN


def test_wrong_types_name_the_key():
    assert _key(_with("broker.port", "1883")) == "broker.port"
    assert _key(_with("broker.keepalive_s", True)) == "broker.keepalive_s"  # a bool is not an int
    assert _key(_with("sampling.period_s", 1.5)) == "sampling.period_s"
    assert _key(_with("apn", 5)) == "apn"
    assert _key(_with("broker", "broker.example.com")) == "broker"
    assert _key(_with("memwatch", [])) == "memwatch"
    assert _key([]) == "config"
    error = _error(_with("broker.port", "1883"))
    assert "an integer from 1 to 65535" in str(error)


def test_unknown_keys_are_typos():
    error = _error(_with("brokr", {}))
    assert error.key == "brokr" and "allowed here" in str(error) and "broker" in str(error)
    assert _key(_with("broker.prot", 1883)) == "broker.prot"
    assert _key(_with("pins.pwr_key", 4)) == "pins.pwr_key"
    assert _key(_with("memwatch.windw", 8)) == "memwatch.windw"  # memwatch's validation, reused


def test_out_of_range_numbers():
    for dotted, value in (("broker.port", 0), ("broker.port", 65536), ("broker.keepalive_s", -1),
                          ("sampling.period_s", 0), ("sampling.period_s", 86401),
                          ("upload.batch_size", 101), ("upload.window_s", 10),
                          ("upload.period_s", 5), ("queue.max_bytes", 100),
                          ("queue.max_reading_bytes", 8), ("retry.backoff_min_s", 0),
                          ("memwatch.window", 5)):
        assert _key(_with(dotted, value)) == dotted, dotted


def test_the_modem_boot_wait_comes_from_config_with_margin():
    loaded = config.validate(_minimal(), "0a1b2c3d4e5f")
    assert loaded["modem"]["boot_timeout_s"] == 20 and loaded["modem"]["timeouts"] == {}
    assert config.validate(_with("modem.boot_timeout_s", 30))["modem"]["boot_timeout_s"] == 30
    for bad in (0, 11, 121, "20", 20.5, None, True):
        assert _key(_with("modem.boot_timeout_s", bad)) == "modem.boot_timeout_s", bad


def test_choices():
    error = _error(_with("sleep.mode", "hibernate"))
    assert error.key == "sleep.mode" and '"light", "deep"' in str(error)
    assert config.validate(_with("sleep.mode", "deep"))["sleep"]["mode"] == "deep"
    assert _key(_with("transport", "wifi")) == "transport"
    assert config.validate(_with("transport", "ppp"))["transport"] == "ppp"
    assert _key(_with("broker.tls", "yes")) == "broker.tls"
    assert _key(_with("uart.baud", 115201)) == "uart.baud"
    assert _key(_with("uart.id", 0)) == "uart.id"
    assert _key(_with("uart.id", True)) == "uart.id"  # True == 1, but it is not a UART
    assert config.validate(_with("uart.baud", 921600))["uart"]["baud"] == 921600


def test_pins_must_exist_on_the_esp32():
    for bad in (6, 11, 20, 24, 28, 40, -1, "4"):
        assert _key(_with("pins.dtr", bad)) == "pins.dtr", bad
    assert "hold the flash" in str(_error(_with("pins.flight", 7)))


def test_outputs_are_not_on_input_only_pins():
    for dotted in ("pins.pwrkey", "pins.flight", "pins.dtr", "pins.power_en", "pins.reset", "uart.tx"):
        error = _error(_with(dotted, 36, _with("pins.battery_adc", None)))
        assert error.key == dotted and "input-only" in str(error), dotted
    loaded = config.validate(_with("pins.ri", 39))  # an input may use them
    assert loaded["pins"]["ri"] == 39


def test_battery_adc_is_an_adc1_pin():
    assert _key(_with("pins.battery_adc", 25)) == "pins.battery_adc"
    assert config.validate(_with("pins.battery_adc", 36, _with("pins.status", None)))["pins"]["battery_adc"] == 36


def test_each_pin_has_one_job():
    error = _error(_with("pins.ri", 4))
    assert error.key == "pins.ri" and "pins.pwrkey" in str(error)
    error = _error(_with("uart.rx", 34))
    assert error.key == "uart.rx" and "pins.status" in str(error)
    assert _key(_with("uart.tx", 25)) == "uart.tx"


def test_optional_pins_may_be_null_but_pwrkey_may_not():
    raw = _minimal()
    raw["pins"] = {"status": None, "dtr": None, "ri": None, "battery_adc": None, "flight": None,
                   "power_en": 5, "reset": 18}
    pins = config.validate(raw)["pins"]
    assert pins["status"] is None and pins["power_en"] == 5 and pins["reset"] == 18
    assert _key(_with("pins.pwrkey", None)) == "pins.pwrkey"
    assert _key(_with("broker.port", None)) == "broker.port"


def test_credentials_are_refused_with_where_they_go():
    for dotted in ("broker.password", "password", "broker.username"):
        error = _error(_with(dotted, "secret"))
        assert error.key == dotted and "secrets.json" in str(error), dotted


def test_device_ids_cannot_inject_topic_levels_or_wildcards():
    for bad in ("a/b", "a+b", "dev#", "a\x00b", "", "x" * 65, "a b"):
        assert _key(_with("device_id", bad)) == "device_id", repr(bad)
        assert _key(_minimal(), bad) == "device_id", repr(bad)
    assert "refused" in str(_error(_with("device_id", "a/b")))
    assert config.validate(_minimal(), "a.b_c-9")["topics"]["data"] == "cellmqtt/a.b_c-9/data"


def test_topics():
    assert _key(_with("topics.data", "cellmqtt/+/data")) == "topics.data"
    assert _key(_with("topics.health", "health/#")) == "topics.health"
    assert _key(_with("topics.status", "$SYS/{device}")) == "topics.status"
    assert _key(_with("topics.data", "cellmqtt/{devce}/data")) == "topics.data"
    assert _key(_with("topics.data", "")) == "topics.data"
    assert _key(_with("topics.command", "cmd/#/x")) == "topics.command"
    # a command filter may use wildcards, but must not catch the device's own messages
    loaded = config.validate(_with("topics.command", "cmd/{device}/#"), "dev1")
    assert loaded["topics"]["command"] == "cmd/dev1/#"
    error = _error(_with("topics.command", "cellmqtt/{device}/#"))
    assert error.key == "topics.command" and "topics.data" in str(error)


def test_broker_host_apn_client_id_and_address():
    for bad in ("mqtt://broker.example.com", "broker.example.com:1883", "", "a..b", "-a", "a b"):
        assert _key(_with("broker.host", bad)) == "broker.host", bad
    assert config.validate(_with("broker.host", "127.0.0.1"))["broker"]["host"] == "127.0.0.1"
    assert _key(_with("apn", 'inter"net')) == "apn"
    assert _key(_with("broker.client_id", "c" * 65)) == "broker.client_id"
    assert _key(_with("broker.client_id", "a/b")) == "broker.client_id"
    assert config.validate(_with("uart.address", "127.0.0.1:5000"))["uart"]["address"] == "127.0.0.1:5000"
    for bad in ("127.0.0.1", "127.0.0.1:0", "host:port"):
        assert _key(_with("uart.address", bad)) == "uart.address", bad
    assert _key(_with("queue.path", "")) == "queue.path"


def test_limits_that_depend_on_each_other():
    raw = _with("upload.every_n_readings", None)
    assert _key(raw) == "upload.every_n_readings"  # and no period either: never uploads
    raw = _with("upload.every_n_readings", None, _with("upload.period_s", 600))
    assert config.validate(raw)["upload"]["period_s"] == 600
    assert _key(_with("upload.every_n_readings", 50, _with("queue.max_readings", 20))) == "upload.every_n_readings"
    assert _key(_with("upload.batch_size", 30, _with("queue.max_readings", 20))) == "upload.batch_size"
    assert _key(_with("retry.backoff_max_s", 30)) == "retry.backoff_max_s"  # below the 60 s minimum
    error = _error(_with("queue.max_reading_bytes", 4096, _with("queue.max_bytes", 2048)))
    assert error.key == "queue.max_bytes"


def _tempfile(text):
    root = os.getenv("TMPDIR") or "/tmp"
    path = "%s/cellmqtt-config-%s.json" % (root, binascii.hexlify(os.urandom(6)).decode())
    with open(path, "w") as f:
        f.write(text)
    return path


def test_load_names_the_file_when_it_cannot_be_used():
    path = _tempfile('{"apn": "internet", ')
    try:
        error = raises(ConfigError, config.load, path)
        assert error.key == path and "JSON" in str(error)
    finally:
        os.remove(path)
    assert raises(ConfigError, config.load, path).key == path  # gone now
    path = _tempfile('{"apn": "internet", "broker": {"host": "h", "port": 70000}}')
    try:
        assert raises(ConfigError, config.load, path).key == "broker.port"
    finally:
        os.remove(path)


def test_validation_does_not_change_its_input():
    raw = _minimal()
    config.validate(raw)
    assert raw == _minimal()


def test_safe_mode_starts_no_duty_cycle_and_reads_no_configuration():
    # an empty safe_mode file leaves the board at the REPL, whatever config.json holds
    calls = []

    def load(path):
        calls.append(path)
        raise ConfigError(path, "refused by the test")

    marker = _tempfile("")
    saved = config.SAFE_MODE_FILE, config.load
    config.SAFE_MODE_FILE, config.load = marker, load
    try:
        assert config.start("config.json") is None and calls == []
        os.remove(marker)
        assert config.start("config.json") is None and calls == ["config.json"]
    finally:
        config.SAFE_MODE_FILE, config.load = saved
