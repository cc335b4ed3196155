"""Reading and checking secrets.json and the TLS files at boot, for secrets.py (which
loads this module and unloads it once boot is done with it): a board needs this code
only then. Errors name the key, never its value; nothing here prints or logs.
"""

import json
import os

from ._const import const
from .errors import ConfigError
from .secrets import Secrets, TlsFiles

MAX_FILE_BYTES = const(8192)  # a client key (RSA 4096 PEM is ~3.3 KB) plus a login
MAX_PEM_BYTES = const(8192)  # a CA bundle of a few certificates; bigger is not a device's job
# key -> (longest value, what is allowed); MQTT allows 65535 bytes, a device needs far less
SCHEMA = {
    "username": (256, "the broker user name: text, 1-256 characters"),
    "password": (256, "the broker password: text, 1-256 characters"),
    "client_key": (4096, "the TLS client key as PEM text (\\n for line ends), up to 4096 characters"),
}


def values(secrets):
    """The secret values of a Secrets that are set (for checks that nothing shows them)."""
    return [value for value in (secrets.username, secrets.password, secrets.client_key) if value]


def load(path="secrets.json"):
    """Read and check secrets.json; a missing file means no credentials."""
    try:
        size = os.stat(path)[6]
    except OSError:
        return Secrets()
    if size > MAX_FILE_BYTES:
        raise ConfigError(path, "larger than %d bytes" % MAX_FILE_BYTES)
    with open(path) as f:
        text = f.read()
    try:
        raw = json.loads(text)
    except ValueError:  # the parser's message may quote the file: not passed on
        raise ConfigError(path, "not valid JSON")
    return validate(raw, path)


def validate(raw, where="secrets.json"):
    """Secrets from a dict; ConfigError names a bad key (never its value)."""
    if type(raw) is not dict:
        raise ConfigError(where, "an object with keys: " + ", ".join(sorted(SCHEMA)))
    for key in raw:
        if key not in SCHEMA:
            raise ConfigError("%s: %s" % (where, key), "unknown key; allowed: " + ", ".join(sorted(SCHEMA)))
    for key, rule in SCHEMA.items():
        value = raw.get(key)
        if value is not None and (type(value) is not str or not 1 <= len(value) <= rule[0]
                                  or "\x00" in value):
            raise ConfigError("%s: %s" % (where, key), rule[1])
    if raw.get("password") is not None and raw.get("username") is None:
        raise ConfigError("%s: username" % where, "required with a password [MQTT-3.1.2-22]")
    key = raw.get("client_key")
    if key is not None and "-----BEGIN" not in key:
        raise ConfigError("%s: client_key" % where, SCHEMA["client_key"][1])
    return Secrets(raw.get("username"), raw.get("password"), key)


def _read_pem(path, key):
    try:
        if os.stat(path)[6] > MAX_PEM_BYTES:
            raise ConfigError(key, "%s is larger than %d bytes" % (path, MAX_PEM_BYTES))
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        raise ConfigError(key, "cannot read %s" % path)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigError(key, "%s: not a PEM certificate" % path)
    return data


def tls_files(broker, secrets):
    """TlsFiles for a validated config's broker section, or None without TLS. A client
    certificate and its key come together."""
    if not broker["tls"]:
        if secrets.client_key is not None:
            raise ConfigError("secrets.json: client_key", "only with broker.tls and broker.certfile")
        return None
    ca = _read_pem(broker["cafile"], "broker.cafile")
    if broker["certfile"] is None:
        if secrets.client_key is not None:
            raise ConfigError("broker.certfile", "required with a client_key in secrets.json")
        return TlsFiles(ca)
    if secrets.client_key is None:
        raise ConfigError("secrets.json: client_key", "required with broker.certfile")
    return TlsFiles(ca, _read_pem(broker["certfile"], "broker.certfile"), secrets.client_key.encode())
