# Conformance of our MQTT client with a real mosquitto (Debian package) on loopback:
# the scenarios of tests/host/conformance.py against one broker of this module, and the
# misbehaving brokers each on a broker (or a plain TCP server) of its own.
import glob

import pytest

from cellmqtt.errors import LinkClosed
from cellmqtt.mqtt import packets as p
from tests.host import conformance as scenario
from tests.host.brokers import BrokerFiles, mosquitto_dynsec_file, mosquitto_password_file, play
from tools.services import Mosquitto

MAX_PACKET = 4096  # the broker's max_packet_size: the oversized test goes past it
# mosquitto 2.0.11 looks for expired keepalives only every 5-6 s: 1.5 s, then up to 6 more
KEEPALIVE_CHECK_S = 10
DYNSEC = (glob.glob("/usr/lib/*/mosquitto_dynamic_security.so") or ["mosquitto_dynamic_security.so"])[0]


@pytest.fixture(scope="module")
def broker():
    files = BrokerFiles()
    dynsec = mosquitto_dynsec_file(files, "secret/#")
    server = Mosquitto(["sys_interval 1", "max_packet_size %d" % MAX_PACKET, "plugin " + DYNSEC,
                        "plugin_opt_config_file " + dynsec])
    try:
        yield server.start()
    finally:
        server.stop()
        files.remove()


@pytest.fixture
def own_broker():
    """own_broker(*config lines): a mosquitto for this test only; own_broker.files
    holds its password or ACL files."""
    files = BrokerFiles()
    started = []

    def start(*lines):
        server = Mosquitto(list(lines))
        started.append(server)
        return server.start()

    start.files = files
    yield start
    for server in started:
        server.stop()
    files.remove()


COMMON = [
    ("connect_disconnect", scenario.connect_disconnect, ()),
    ("qos0", scenario.publish_receive, (0,)),
    ("qos1", scenario.publish_receive, (1,)),
    ("qos2", scenario.publish_receive, (2,)),
    ("retained", scenario.retained, ()),
    ("offline_queue", scenario.offline_queue, ()),
    ("redeliver_out_qos1", scenario.redelivery_outgoing, (1, p.PUBLISH)),
    ("redeliver_out_qos2_publish", scenario.redelivery_outgoing, (2, p.PUBLISH)),
    ("redeliver_out_qos2_pubrel", scenario.redelivery_outgoing, (2, p.PUBREL)),
    ("redeliver_in_qos1", scenario.redelivery_incoming, (1,)),
    ("redeliver_in_qos2", scenario.redelivery_incoming, (2,)),
    ("overlapping", scenario.overlapping, ()),
    ("keepalive_will", scenario.keepalive_will, (KEEPALIVE_CHECK_S,)),
    ("empty_client_id", scenario.empty_client_id, ()),
    ("subscribe_refused", scenario.subscribe_refused, ()),
    ("dollar_topics", scenario.dollar_topics, ()),
    ("unsubscribe", scenario.unsubscribe, ()),
    ("oversized_in_one_write", scenario.oversized, (MAX_PACKET + 1000,)),
    ("oversized_in_many_writes", scenario.oversized, (200000,)),
    ("oversized_incoming", scenario.oversized_incoming, (MAX_PACKET - 100,)),
]


@pytest.mark.parametrize("body, args", [case[1:] for case in COMMON], ids=[case[0] for case in COMMON])
def test_scenario(broker, new_lab, body, args):
    play(new_lab(broker.address), body, *args)


def test_idle_client_with_a_short_keepalive_is_never_dropped(broker, new_lab):
    play(new_lab(broker.address), scenario.keepalive_idle, 2, 20)


def test_bad_password_and_no_login_are_refused_not_authorized(own_broker, new_lab):
    # mosquitto 2.0 answers a wrong password with 5 under MQTT 3.1.1, not 4.
    passwords = mosquitto_password_file(own_broker.files, "alice", "secret")
    server = own_broker("password_file " + passwords, "allow_anonymous false")
    lab = new_lab(server.address)
    play(lab, scenario.refused, 5, username="alice", password=b"wrong")
    play(lab, scenario.refused, 5, username="mallory", password=b"secret")
    play(lab, scenario.refused, 5)

    async def accepted(lab):
        client = await lab.connected(lab.id("alice"), username="alice", password=b"secret")
        await client.disconnect()

    play(lab, accepted)


def test_identifier_rejected_is_code_2(own_broker, new_lab):
    server = own_broker("allow_zero_length_clientid false")
    play(new_lab(server.address), scenario.refused, 2, client_id="")


def test_broker_that_never_answers_connect(new_lab):
    play(new_lab("127.0.0.1:1"), scenario.silent_broker)


def test_broker_restart_mid_session(own_broker, new_lab):
    server = own_broker()
    play(new_lab(server.address), scenario.restart_mid_session, server.restart)


def test_link_dying_under_a_publish_raises_link_closed(broker, new_lab):
    # The stream's write fails as the PUBLISH goes out (a modem link or socket dying):
    # the caller must get the typed LinkClosed, like every other way a link dies.
    async def body(lab):
        client = lab.client(lab.id("client"))
        _, tap = await lab.connect(client)
        tap.cut_before = (p.PUBLISH,)
        try:
            await client.publish(lab.topic("x"), b"lost", qos=1)
        except LinkClosed:
            pass
        finally:
            await client.disconnect()

    play(new_lab(broker.address), body)
