# secrets.json and the TLS keys of config.json: values checked, errors naming keys
# and never values, reprs that show nothing secret; topics that device and client ids
# cannot bend.
import json
import sys

from cellmqtt import config, secrets, secrets_check
from cellmqtt.errors import ConfigError
from cellmqtt.mqtt import MqttClient
from cellmqtt.mqtt.packets import Connect
from support import raises, remove_tree, temp_folder

PASSWORD = "pw-Zq81!x"
USERNAME = "user-Kx52"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n"
CA = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAV2gAwIBAgIU\n-----END CERTIFICATE-----\n"


def _write(folder, name, data):
    path = folder + "/" + name
    with open(path, "wb" if type(data) is bytes else "w") as f:
        f.write(data)
    return path


def _no_secret_in(text):
    for value in (PASSWORD, USERNAME, KEY, "MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8w"):
        assert value not in text, text


def test_missing_file_means_no_credentials():
    loaded = secrets.load("no-such-folder/secrets.json")
    assert loaded.username is None and loaded.password is None and loaded.client_key is None
    assert secrets_check.values(loaded) == []


def test_values_load_and_never_show():
    folder = temp_folder("secrets")
    try:
        path = _write(folder, "secrets.json", json.dumps(
            {"username": USERNAME, "password": PASSWORD, "client_key": KEY}))
        loaded = secrets.load(path)
        assert (loaded.username, loaded.password, loaded.client_key) == (USERNAME, PASSWORD, KEY)
        assert sorted(secrets_check.values(loaded)) == sorted([USERNAME, PASSWORD, KEY])
        assert loaded.login() == (USERNAME, PASSWORD.encode())
        assert secrets.Secrets().login() == (None, None)
        for text in (repr(loaded), str(loaded)):
            _no_secret_in(text)
            assert "password=set" in text
    finally:
        remove_tree(folder)


def test_bad_secrets_are_named_by_key_not_value():
    cases = (
        ({"username": USERNAME, "pasword": PASSWORD}, "pasword"),
        ({"username": USERNAME, "password": PASSWORD * 40}, "password"),
        ({"username": 7}, "username"),
        ({"password": PASSWORD}, "username"),  # a password needs a user name [MQTT-3.1.2-22]
        ({"client_key": PASSWORD}, "client_key"),
        ({"username": USERNAME, "password": PASSWORD + "\x00"}, "password"),
    )
    for raw, key in cases:
        error = raises(ConfigError, secrets.validate, raw)
        assert error.key.endswith(key), (error.key, key)
        _no_secret_in(str(error))
        _no_secret_in(repr(error))
    assert raises(ConfigError, secrets.validate, [USERNAME]).key == "secrets.json"


def test_a_broken_file_is_not_quoted():
    folder = temp_folder("secrets")
    try:
        broken = _write(folder, "broken.json", '{"username": "%s", "password": "%s"' % (USERNAME, PASSWORD))
        error = raises(ConfigError, secrets.load, broken)
        assert "not valid JSON" in str(error)
        _no_secret_in(str(error))
        huge = folder + "/huge.json"
        with open(huge, "w") as f:
            f.write('{"password": "')
            for _ in range(secrets_check.MAX_FILE_BYTES // 512 + 1):
                f.write("x" * 512)
            f.write('"}')
        assert "larger than" in str(raises(ConfigError, secrets.load, huge))
    finally:
        remove_tree(folder)


def test_credentials_stay_out_of_config_json():
    raw = {"apn": "internet", "broker": {"host": "broker.example.com", "password": PASSWORD}}
    error = raises(ConfigError, config.validate, raw, "dev1")
    assert error.key == "broker.password" and "secrets.json" in str(error)
    _no_secret_in(str(error))


def _broker(**keys):
    raw = {"apn": "internet", "broker": {"host": "broker.example.com"}}
    raw["broker"].update(keys)
    return raw


def test_tls_keys_of_config_json():
    loaded = config.validate(_broker(tls=True, port=8883, cafile="certs/ca.pem"), "dev1")["broker"]
    assert loaded["tls"] is True and loaded["cafile"] == "certs/ca.pem" and loaded["certfile"] is None
    assert config.validate(_broker(), "dev1")["broker"]["tls"] is False
    for raw, key in ((_broker(tls=True), "broker.cafile"),
                     (_broker(cafile="ca.pem"), "broker.cafile"),
                     (_broker(certfile="client.pem"), "broker.certfile"),
                     (_broker(tls=1, cafile="ca.pem"), "broker.tls"),
                     (_broker(tls=True, cafile="../ca pem"), "broker.cafile")):
        assert raises(ConfigError, config.validate, raw, "dev1").key == key, key


def test_tls_files_come_from_flash_and_secrets():
    folder = temp_folder("tlsfiles")
    try:
        ca = _write(folder, "ca.pem", CA)
        cert = _write(folder, "client.pem", CA)
        broker = config.validate(_broker(tls=True, cafile=ca[1:] if ca[0] == "/" else ca), "d")["broker"]
        broker["cafile"] = ca  # a board's paths are relative; the test's folder is not
        secrets.load(folder + "/secrets.json")
        files = secrets.tls_files(broker, secrets.Secrets())
        assert files.ca == CA and files.cert is None and files.key is None
        # boot's last call: the checking code is not left loaded (and comes back for a next call)
        assert "cellmqtt.secrets_check" not in sys.modules
        assert secrets.tls_files(dict(broker, tls=False, cafile=None), secrets.Secrets()) is None

        with_key = secrets.Secrets(client_key=KEY)
        mutual = secrets.tls_files(dict(broker, certfile=cert), with_key)
        assert mutual.cert == CA and mutual.key == KEY.encode()
        _no_secret_in(repr(mutual))

        for bad, key in ((dict(broker, cafile=folder + "/missing.pem"), "broker.cafile"),
                         (dict(broker, cafile=_write(folder, "junk.pem", b"junk")), "broker.cafile"),
                         (dict(broker, certfile=cert), "secrets.json: client_key")):
            assert raises(ConfigError, secrets.tls_files, bad, secrets.Secrets()).key == key, key
        assert raises(ConfigError, secrets.tls_files, broker, with_key).key == "broker.certfile"
        plain = dict(broker, tls=False, cafile=None)
        assert raises(ConfigError, secrets.tls_files, plain, with_key).key == "secrets.json: client_key"
    finally:
        remove_tree(folder)


def test_credentials_never_in_a_packet_repr():
    packet = Connect("dev1", username=USERNAME, password=PASSWORD.encode())
    _no_secret_in(repr(packet))  # as a board has it: no field shown
    from cellmqtt.mqtt import server_codec  # noqa: F401  # a PC's repr: the fields, credentials hidden

    text = repr(packet)
    _no_secret_in(text)
    assert "username=<set>" in text and "'dev1'" in text
    assert "password=None" in repr(Connect("dev1"))
    client = MqttClient("dev1", username=USERNAME, password=PASSWORD.encode())
    _no_secret_in(repr(client))


def test_ids_cannot_bend_topics():
    """A device id or client id is one topic level: no wildcard, separator or NUL gets
    in, whether it comes from config.json or from the hardware."""
    for bad in ("a/b", "+", "#", "dev/#", "dev+1", "a\x00b", "", "x" * 65, "dév", "$SYS"):
        raw = _broker()
        raw["device_id"] = bad
        assert raises(ConfigError, config.validate, raw, "d").key == "device_id", repr(bad)
        assert raises(ConfigError, config.validate, _broker(), bad).key == "device_id", repr(bad)
        raw = _broker(client_id=bad)
        assert raises(ConfigError, config.validate, raw, "d").key == "broker.client_id", repr(bad)
    topics = config.validate(_broker(), "a.b-c_9")["topics"]
    for topic in topics.values():
        assert topic.count("/") == 2 and "+" not in topic and "#" not in topic
