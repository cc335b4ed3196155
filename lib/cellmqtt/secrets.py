"""secrets.json: the device's credentials, kept apart from config.json.

  {"username": "...", "password": "...", "client_key": "-----BEGIN PRIVATE KEY-----\\n..."}

Every key is optional and the file itself too (no file: no credentials). The values
never leave these objects except to the MQTT client and the TLS layer: they are not in
their repr, not in any error message (errors name the key, never the value), and
nothing here prints or logs. This module holds what a device keeps (Secrets,
TlsFiles); reading and checking them is secrets_check.py's code, which boot loads for
load() and unloads at the end of tls_files(), its last step, before the transport's
modules load: boot's heap peaks there.
"""

from . import unload


class Secrets:
    """Credentials for one device; repr shows only which ones are set."""

    __slots__ = ("username", "password", "client_key")

    def __init__(self, username=None, password=None, client_key=None):
        self.username = username
        self.password = password
        self.client_key = client_key

    def __repr__(self):
        return "<Secrets %s>" % " ".join(["%s=%s" % (name, "set" if getattr(self, name) else "unset")
                                          for name in self.__slots__])

    def login(self):
        """(user name, password as bytes) for MqttClient; None where not set."""
        password = self.password
        return self.username, None if password is None else password.encode()


class TlsFiles:
    """What a TLS session needs, read from flash at boot: ca and cert (PEM bytes from
    broker.cafile/certfile) and key (from secrets.json). repr never shows the key."""

    __slots__ = ("ca", "cert", "key")

    def __init__(self, ca, cert=None, key=None):
        self.ca = ca
        self.cert = cert
        self.key = key

    def __repr__(self):
        return "<TlsFiles ca=%d bytes cert=%s key=%s>" % (
            len(self.ca), "none" if self.cert is None else "%d bytes" % len(self.cert),
            "unset" if self.key is None else "set")


def _check():
    from . import secrets_check

    return secrets_check


def load(path="secrets.json"):
    """Read and check secrets.json: a Secrets; a missing file means no credentials."""
    return _check().load(path)


def validate(raw, where="secrets.json"):
    """Secrets from a dict; ConfigError names a bad key (never its value)."""
    return _check().validate(raw, where)


def tls_files(broker, secrets):
    """TlsFiles for a validated config's broker section, or None without TLS. A client
    certificate and its key come together. Boot's last call here: the checking code
    is unloaded on the way out."""
    try:
        return _check().tls_files(broker, secrets)
    finally:
        unload("cellmqtt.secrets_check")
