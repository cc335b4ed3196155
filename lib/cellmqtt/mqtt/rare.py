"""What a duty cycle never does, loaded on first use (each module's code costs heap on a
board, from its import on): unsubscribing (and its packet, encoded by packets.encode),
QoS 2's exchanges (a PUBLISH of QoS 2 from the broker, PUBREL, PUBREC), a PUBLISH over
max_packet, and the names of a broker's refusals.
"""

from ..errors import LimitExceeded
from ..ledger import INFLIGHT
from . import packets as p

# CONNACK return codes 1-5 [MQTT-3.2.2-3], Table 3.1
REFUSAL_NAMES = (
    None,
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorized",
)


class Unsubscribe:
    TYPE = p.UNSUBSCRIBE

    def __init__(self, packet_id, filters):
        self.packet_id = packet_id
        self.filters = filters


async def unsubscribe(client, topic_filter):
    """MqttClient.unsubscribe()."""
    from .client import OWNER, drop_sub  # loaded already, as for oversized()

    session = client._session
    session.require("unsubscribe")
    await client._wait_slot()
    packet, entry = session.unsubscribe([topic_filter])
    entry.fd = client._ledger.acquire(INFLIGHT, OWNER, "unsubscribe")
    try:
        await client._send(packet)
        await client._until(entry, client.ack_timeout_ms, "UNSUBACK")
    except BaseException as error:
        client._untrack(entry)
        raise error
    sub = client._subs.get(topic_filter)
    if sub is not None:
        drop_sub(client, topic_filter, sub)


def oversized(client, message, token):
    """MqttClient._deliver() of a PUBLISH over max_packet, read past: counted and
    reported; True when on_oversized holds its token."""
    from .client import _called  # loaded already: only a client gets here

    client.oversized += 1
    client.last_oversized = (message.topic, message.size)
    return client.on_oversized is not None and _called(
        client, client.on_oversized, message.topic, message.size, message.qos, token) and token is not None


def receive(session, packet):
    """Session.receive() of a QoS 2 PUBLISH, a PUBREL or a PUBREC."""
    kind = packet.TYPE
    packet_id = packet.packet_id
    if kind == p.PUBLISH:
        # delivered once, on arrival; its id held until PUBREL ([MQTT-4.3.3-2], method B)
        held = session.incoming_qos2
        if packet_id in held:
            return p.Bare(p.PUBREC, packet_id), None  # a resend: delivered already
        if len(held) >= session.max_incoming_qos2:
            raise LimitExceeded("QoS 2 messages awaiting PUBREL", session.max_incoming_qos2)
        held.add(packet_id)
        return p.Bare(p.PUBREC, packet_id), packet
    if kind == p.PUBREL:
        session.incoming_qos2.discard(packet_id)
        return p.Bare(p.PUBCOMP, packet_id), None  # always answered [MQTT-4.3.3-2]
    entry = session.inflight.get(packet_id)  # a PUBREC
    if entry is None:
        return None, None  # not ours (any more): nothing to release
    session._complete(entry, kind)
    entry.released = True
    return p.Bare(p.PUBREL, packet_id), None
