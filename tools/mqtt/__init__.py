"""A command-line MQTT client for people, in the manner of mosquitto_pub/mosquitto_sub,
built on cellmqtt's own client: over an OS socket, or through a SIM7600 (the
emulator's UART, or a real modem's AT port via pyserial).

  python -m tools.mqtt pub -t TOPIC (-m TEXT | -f FILE | -s | -n) [-q 0|1|2] [-r] [options]
  python -m tools.mqtt sub -t FILTER [-t FILTER ...] [-q 0|1|2] [-C N] [-W S] [-v] [-N] [options]

Options of both: -h HOST (127.0.0.1), -p PORT (1883; 8883 with --tls), -i ID,
-k KEEPALIVE_S (60), -u USER, -P PASSWORD, -c (persistent session: clean session off;
needs -i), --will-topic/--will-payload/--will-qos/--will-retain, --timeout S (30: TCP
connect, CONNACK and every acknowledgement), --max-packet BYTES, -d (progress on
stderr), TLS: --tls --cafile F [--cert F --key F] (the broker's certificate is always
verified; over the socket with Python's ssl, through the modem with its SSL stack), and
the modem path: --modem HOST:PORT|DEVICE [--control HOST:PORT] [--apn APN] [--baud N].

Through the modem it powers the modem on through the pins when --control is given and
STATUS is low (and off again at the end), then AT handshake, SIM, registration, APN,
NETOPEN, one link to the broker, the MQTT work, DISCONNECT, link closed, NETCLOSE.

Exit status (see cli.py): 0 done; 1 unexpected error; 2 bad usage; 3 connection
refused by the broker; 4 timeout (no CONNACK or ack in time, or -W passed before -C
messages came); 5 link failure (broker unreachable, connection lost, TLS refused);
6 modem failure; 7 subscription refused (SUBACK 0x80); 8 protocol violation by the
broker or a limit hit; 9 resources still held at exit (a bug); 130 interrupted before
the work was done.
A failure prints one line on stderr naming its cause.
"""
