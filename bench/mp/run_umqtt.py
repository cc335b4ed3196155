# umqtt.simple or umqtt.robust (variant=simple|robust), given a counted socket to the
# broker through a stand-in for the socket module it imports.
import socket

import harness as h


class _Sockets:
    def __init__(self, meter, nodelay):
        self._meter = meter
        self._nodelay = nodelay

    def socket(self):
        return h.CountingSocket(self._meter, socket.socket(), self._nodelay)

    def getaddrinfo(self, host, port):
        return socket.getaddrinfo(host, port)


def main(opts):
    from umqtt import simple

    if opts.get("variant") == "robust":
        from umqtt.robust import MQTTClient
    else:
        MQTTClient = simple.MQTTClient
    work = h.Workload(opts["tag"], opts["qos"])
    meter = h.Meter(opts["mode"] == "peak")
    simple.socket = _Sockets(meter, opts["nodelay"])
    got = [0]

    def arrived(topic, message):
        got[0] += 1

    def cycle():
        got[0] = 0
        client = MQTTClient(work.client_id, opts["host"], opts["port"], keepalive=h.KEEPALIVE_S)
        client.set_callback(arrived)
        client.connect(True)
        client.subscribe(work.down, work.qos)
        for payload in work.payloads:
            client.publish(work.up, payload, qos=work.qos)
        while got[0] < h.DOWNLINKS:
            client.wait_msg()
        client.disconnect()

    h.run_cycles(opts, cycle, meter)


main(h.options())
