"""Test certificates made with the openssl command: a CA, server certificates that are
good, expired or for the wrong host, a client certificate for mutual TLS, and a second
CA that signed none of them. Everything lands in one folder the caller owns.

    pki = make_pki(folder)   # {"ca": path, "server_cert": path, ...}

  python -m tools.certs [FOLDER]

Writes the PKI into FOLDER (default pki/, made if missing) and prints each file's role
and path: ca.crt, other_ca.crt, and a .crt and a .key for server, expired, wrong_host
and client.
"""

import argparse
import os
import subprocess
import sys

KEY_BITS = "2048"
GOOD_HOSTS = ("localhost", "127.0.0.1")
WRONG_HOST = "wrong.example.com"


def _openssl(*arguments, cwd):
    subprocess.run(("openssl",) + arguments, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


def _key(name, cwd):
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:" + KEY_BITS,
             "-out", name + ".key", cwd=cwd)


def _ca(name, cwd):
    _key(name, cwd)
    _openssl("req", "-x509", "-new", "-key", name + ".key", "-sha256", "-days", "3650",
             "-subj", "/CN=%s test CA" % name, "-out", name + ".crt", cwd=cwd)


def _signed(name, ca, common_name, hosts, cwd, days=3650, start=None, client=False):
    """A certificate for `name` signed by `ca`; `start` (YYYYMMDDHHMMSSZ) back-dates it."""
    _key(name, cwd)
    _openssl("req", "-new", "-key", name + ".key", "-subj", "/CN=" + common_name,
             "-out", name + ".csr", cwd=cwd)
    names = ",".join(("IP:" if host[0].isdigit() else "DNS:") + host for host in hosts)
    usage = "clientAuth" if client else "serverAuth"
    with open(os.path.join(cwd, name + ".ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=%s\n" % usage)
        if names:
            f.write("subjectAltName=%s\n" % names)
    if start is None:
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                 "-CAcreateserial", "-days", str(days), "-sha256", "-extfile", name + ".ext",
                 "-out", name + ".crt", cwd=cwd)
        return
    # openssl x509 cannot back-date: `openssl ca` with an explicit start and end can
    database = os.path.join(cwd, name + ".index")
    open(database, "w").close()
    with open(os.path.join(cwd, name + ".cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=test\n[test]\ndatabase=%s\nnew_certs_dir=%s\nserial=%s.srl\n"
                "default_md=sha256\npolicy=any\nunique_subject=no\n[any]\ncommonName=supplied\n"
                % (database, cwd, os.path.join(cwd, name)))
    with open(os.path.join(cwd, name + ".srl"), "w") as f:
        f.write("1000\n")
    _openssl("ca", "-batch", "-config", name + ".cnf", "-cert", ca + ".crt", "-keyfile", ca + ".key",
             "-in", name + ".csr", "-startdate", start, "-enddate", "20200102000000Z",
             "-extfile", name + ".ext", "-notext", "-out", name + ".crt", cwd=cwd)


def make_pki(folder):
    """Make every certificate in `folder` (created if missing); returns name -> path:
    ca, server_cert, server_key (localhost and 127.0.0.1), expired_cert, expired_key,
    wrong_host_cert, wrong_host_key, client_cert, client_key (signed by ca for mutual
    TLS), other_ca (a CA that signed nothing here)."""
    folder = os.path.abspath(folder)  # openssl runs inside it and is given paths in it
    os.makedirs(folder, exist_ok=True)
    _ca("ca", folder)
    _ca("other_ca", folder)
    _signed("server", "ca", "localhost", GOOD_HOSTS, folder)
    _signed("expired", "ca", "localhost", GOOD_HOSTS, folder, start="20200101000000Z")
    _signed("wrong_host", "ca", WRONG_HOST, (WRONG_HOST,), folder)
    _signed("client", "ca", "cellmqtt-test-device", (), folder, client=True)
    paths = {"ca": "ca.crt", "other_ca": "other_ca.crt"}
    for name in ("server", "expired", "wrong_host", "client"):
        paths[name + "_cert"] = name + ".crt"
        paths[name + "_key"] = name + ".key"
    return {key: os.path.join(folder, value) for key, value in paths.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.certs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="pki", help="where the PKI goes (default pki)")
    args = parser.parse_args(argv)
    for key, path in sorted(make_pki(args.folder).items()):
        print(key, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
