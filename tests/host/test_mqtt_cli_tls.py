# `python -m tools.mqtt pub|sub --tls` against mosquitto's TLS listeners, over a socket
# (Python's ssl) and through the emulator's modem SSL stack (--modem): delivery, mutual
# TLS, the refusals with the one line naming their cause, and no session left open.
import subprocess
import sys

import pytest

from cellmqtt.errors import TLS_EXPIRED, TLS_HOST, TLS_REFUSED, TLS_UNTRUSTED
from tests.host.test_mqtt_cli import RUN_TIMEOUT_S, Sub, emulator, emulator_state  # noqa: F401
from tools.board_files import ROOT
from tools.certs import make_pki
from tools.services import TlsMosquitto


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def broker(pki):
    server = TlsMosquitto(pki).start()
    yield server
    server.stop()


def mqtt(*arguments):
    done = subprocess.run([sys.executable, "-m", "tools.mqtt", *arguments], cwd=ROOT, capture_output=True,
                          timeout=RUN_TIMEOUT_S)
    return done.returncode, done.stdout, done.stderr.decode()


def tls(broker, pki, listener="good", ca="ca"):
    return ["-h", "127.0.0.1", "-p", broker.tls[listener].rpartition(":")[2], "--tls", "--cafile", pki[ca]]


def plain(broker):
    return ["-h", "127.0.0.1", "-p", str(broker.port)]


@pytest.mark.parametrize("path", ["socket", "modem"])
def test_pub_over_tls_reaches_a_subscriber(broker, pki, emulator, path):  # noqa: F811
    modem = emulator("--power", "on") if path == "modem" else None
    through = ["--modem", modem.uart] if modem else []
    topic = "cli/tls/" + path
    sub = Sub(*plain(broker), "-t", topic, "-q", "1", "-C", "1").wait_subscribed()
    status, out, err = mqtt("pub", *tls(broker, pki), *through, "-t", topic, "-m", "sealed", "-q", "1", "-d")
    assert (status, out) == (0, b""), err
    assert ("modem TLS session 0" if modem else "TLS connection to") in err
    assert sub.finish()[:2] == (0, b"sealed\n")
    if modem:
        state = emulator_state(modem)
        assert state["tls_sessions"] == [] and state["tls_started"] is False and state["netopen"] is False


@pytest.mark.parametrize("path", ["socket", "modem"])
def test_sub_over_mutual_tls(broker, pki, emulator, path):  # noqa: F811
    modem = emulator("--power", "on") if path == "modem" else None
    through = ["--modem", modem.uart] if modem else []
    topic = "cli/tls/mutual/" + path
    sub = Sub(*tls(broker, pki, "mutual"), "--cert", pki["client_cert"], "--key", pki["client_key"],
              *through, "-t", topic, "-q", "1", "-C", "1")
    sub.wait_subscribed()
    assert mqtt("pub", *plain(broker), "-t", topic, "-m", "both ways", "-q", "1")[0] == 0
    assert sub.finish()[:2] == (0, b"both ways\n")
    if modem:
        assert emulator_state(modem)["tls_sessions"] == []


@pytest.mark.parametrize("listener, ca, socket_cause", [
    ("good", "other_ca", TLS_UNTRUSTED), ("expired", "ca", TLS_EXPIRED), ("wrong_host", "ca", TLS_HOST),
    ("mutual", "ca", TLS_REFUSED)])
def test_refusals_exit_5_naming_tls_on_both_paths(broker, pki, emulator, listener, ca, socket_cause):  # noqa: F811
    # over the socket Python's ssl names the cause; the modem says only "handshake error"
    status, _, err = mqtt("pub", *tls(broker, pki, listener, ca), "-t", "cli/tls/no", "-m", "x")
    assert status == 5 and err.startswith("mqtt pub: TLS failure: " + socket_cause), err
    modem = emulator("--power", "on")
    status, _, err = mqtt("pub", *tls(broker, pki, listener, ca), "--modem", modem.uart, "-t", "cli/tls/no", "-m", "x")
    assert status == 5 and "mqtt pub: TLS failure: handshake failed (+CCHOPEN err 15" in err, err
    state = emulator_state(modem)
    assert state["tls_sessions"] == [] and state["tls_started"] is False and state["netopen"] is False


@pytest.mark.parametrize("arguments, message", [
    (["--tls"], "--tls needs --cafile"),
    (["--cafile", "x.pem"], "--cafile, --cert and --key need --tls"),
    (["--tls", "--cafile", "/nonexistent/ca.pem"], "--cafile /nonexistent/ca.pem: No such file"),
    (["--tls", "--cafile", "CA", "--cert", "CA"], "--cert and --key go together")])
def test_tls_usage_errors_exit_2(pki, arguments, message):
    arguments = [pki["ca"] if word == "CA" else word for word in arguments]
    status, _, err = mqtt("pub", "-t", "a", "-m", "b", *arguments)
    assert status == 2 and message in err, err
