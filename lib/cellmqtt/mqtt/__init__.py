"""MQTT 3.1.1: sans-IO codec and session, and the async client over any Stream.

    from cellmqtt.mqtt import MqttClient, Will
    client = MqttClient("device-1", keepalive_s=60)
    await client.connect(stream)
    await client.publish("t/1", b"reading", qos=1)
    await client.disconnect()

The reconnect policy for long-lived use is cellmqtt.mqtt.robust.RobustClient.
Importing this package loads nothing: a name is imported on first use (a module
costs heap on a board; config.py needs only topic.py).
"""

from .. import lazy

__getattr__ = lazy("cellmqtt.mqtt", {"MqttClient": "client", "Will": "packets"})
