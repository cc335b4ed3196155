# Conformance of our MQTT client with amqtt 0.12 (PyPI), the embedded default broker:
# the scenarios of tests/host/conformance.py that amqtt supports, against one broker
# of this module (users from a password file, a subscribe ACL), and $SYS and a
# restart on brokers of their own.
#
# Not run here, because amqtt itself does not do them (seen with amqtt 0.12.1):
# - QoS downgrade to the subscription's: a QoS 0/1 message reaches a QoS 2
#   subscription at QoS 2 (qos0/qos1 run with the subscription at the message's QoS);
# - retained: every CONNECT is sent the retained messages of every filter any client
#   subscribed to, at QoS 0 with RETAIN (broker.py, "publish retained messages to a
#   pre-existing session's subscriptions" iterates the broker-wide subscriptions), so
#   a new subscriber gets a retained message twice, and clients get topics they never
#   subscribed to;
# - offline queue: queued messages come back with RETAIN set and at the
#   subscription's QoS;
# - redelivery on resume: unacknowledged messages to a persistent session are not
#   sent again [MQTT-4.4.0-1], and a PUBREL sent again after reconnecting gets no
#   PUBCOMP (our message then stays in the resume store until its id is reused);
# - keepalive expiry: a silent client is never dropped (the read timeout handler of
#   the broker does nothing), so its will is never published;
# - a maximum packet size (none exists), and rejecting client ids by configuration.
import pytest
from pwdlib.hashers.argon2 import Argon2Hasher

from cellmqtt.mqtt import packets as p
from tests.host import conformance as scenario
from tests.host.brokers import BrokerFiles, play
from tools.services import Amqtt

USER = {"username": "tester", "password": b"tested"}  # may subscribe to anything
LIMITED = {"username": "limited", "password": b"limited"}  # only below c/: secret/x is refused


@pytest.fixture(scope="module")
def broker():
    files = BrokerFiles()
    passwords = files.path("passwords")
    hasher = Argon2Hasher()
    with open(passwords, "w") as out:
        for login in (USER, LIMITED):
            out.write("%s:%s\n" % (login["username"], hasher.hash(login["password"].decode())))
    server = Amqtt(plugins={
        "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": passwords},
        "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": {
            "acl": {USER["username"]: ["#"], LIMITED["username"]: ["c/#"]}},
    })
    try:
        yield server.start()
    finally:
        server.stop()
        files.remove()


COMMON = [
    ("connect_disconnect", scenario.connect_disconnect, ()),
    ("qos0", scenario.publish_receive, (0, 0)),
    ("qos1", scenario.publish_receive, (1, 1)),
    ("qos2", scenario.publish_receive, (2,)),
    ("redeliver_out_qos1", scenario.redelivery_outgoing, (1, p.PUBLISH)),
    ("redeliver_out_qos2_publish", scenario.redelivery_outgoing, (2, p.PUBLISH)),
    ("overlapping", scenario.overlapping, ()),
    ("empty_client_id", scenario.empty_client_id, ()),
    ("unsubscribe", scenario.unsubscribe, ()),
]


@pytest.mark.parametrize("body, args", [case[1:] for case in COMMON], ids=[case[0] for case in COMMON])
def test_scenario(broker, new_lab, body, args):
    play(new_lab(broker.address, **USER), body, *args)


def test_subscribe_refused(broker, new_lab):
    play(new_lab(broker.address, **LIMITED), scenario.subscribe_refused)


def test_bad_password_and_no_login_are_refused_not_authorized(broker, new_lab):
    lab = new_lab(broker.address)
    play(lab, scenario.refused, 5, username=USER["username"], password=b"wrong")
    play(lab, scenario.refused, 5, username="mallory", password=b"tested")
    play(lab, scenario.refused, 5)


def test_dollar_topics(new_lab):
    server = Amqtt(plugins={"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                            "amqtt.plugins.sys.broker.BrokerSysPlugin": {"sys_interval": 1}}).start()
    try:
        play(new_lab(server.address), scenario.dollar_topics)
    finally:
        server.stop()


def test_broker_restart_mid_session(new_lab):
    server = Amqtt().start()
    try:
        play(new_lab(server.address), scenario.restart_mid_session, server.restart)
    finally:
        server.stop()
