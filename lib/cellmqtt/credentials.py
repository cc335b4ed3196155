"""What a booted device keeps of its credentials: the broker login (Secrets) and the
TLS files (TlsFiles). secrets.py reads and checks them at boot and then unloads
itself; these two classes stay, apart from its code. Neither repr shows a value."""


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
