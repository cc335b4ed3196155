# The emulator's TCP/IP stack: NETOPEN/NETCLOSE, links bridged to real loopback servers,
# CIPSEND with its prompt, manual and push receive, closes from either side, and the
# socket table empty after each way of ending.
import socket
import threading
import time

import pytest

from tools.services import EchoServer
from tools.sim7600_emu.threaded import Control, ThreadedEmulator, Wire

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


def info(*lines):
    return b"\r\n" + b"\r\n".join(lines) + b"\r\n\r\nOK\r\n"


@pytest.fixture(scope="module")
def emu():
    with ThreadedEmulator(power_on=True, time_scale=0) as emulator:
        yield emulator
        assert emulator.errors == []


@pytest.fixture(scope="module")
def echo():
    server = EchoServer().start()
    yield server
    server.stop()


@pytest.fixture
def uart(emu):
    control = Control(emu.control_address)
    assert control.ask("RESET") == "OK"
    control.close()
    wire = Wire(emu.uart_address)
    wire.send(b"ATE0\r")
    wire.expect(b"ATE0\r" + OK)
    yield wire
    wire.close()


@pytest.fixture
def server():
    """A loopback listener the test drives by hand (accepts, sends, closes)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(2)
    yield listener
    listener.close()


def port_of(address):
    return int(str(address).rpartition(":")[2])


def cmd(wire, command, answer):
    wire.send(command + b"\r")
    wire.expect(answer)


def netopen(wire):
    cmd(wire, b"AT+NETOPEN", OK + b"\r\n+NETOPEN: 0\r\n")


def cipopen(wire, link, port):
    cmd(wire, b'AT+CIPOPEN=%d,"TCP","127.0.0.1",%d' % (link, port),
        OK + b"\r\n+CIPOPEN: %d,0\r\n" % link)


def next_line(wire):
    """The next CR LF framed line, without its framing."""
    wire.expect(b"\r\n")
    return wire.read_until(b"\r\n")[:-2]


def read_link(wire, size, largest_rest=None):
    """Read `size` bytes from link 0 with AT+CIPRXGET=2, stepping over the URCs that
    interleave (arrival, remote close, send result) and over "No data" while bytes are
    still in flight."""
    received = bytearray()
    while len(received) < size:
        wire.send(b"AT+CIPRXGET=2,0,1500\r")
        line = next_line(wire)
        while line in (b"+CIPRXGET: 1,0", b"+IPCLOSE: 0,1") or line.startswith(b"+CIPSEND: 0,"):
            line = next_line(wire)
        if line == b"+IP ERROR: No data":
            wire.expect(ERROR)
            continue
        assert line.startswith(b"+CIPRXGET: 2,0,")
        count, rest = (int(n) for n in line.split(b",")[2:4])
        assert 0 < count <= 1500
        if largest_rest is not None:
            assert rest <= largest_rest
        received += wire.read_exact(count)
        wire.expect(OK)
    return bytes(received)


def test_netopen_netclose_and_ipaddr_forms(uart, emu):
    cmd(uart, b"AT+NETOPEN?", info(b"+NETOPEN: 0"))
    cmd(uart, b"AT+IPADDR", b"\r\n+IP ERROR: Network not opened\r\n" + ERROR)
    cmd(uart, b"AT+NETCLOSE", b"\r\n+NETCLOSE: 2\r\n" + ERROR)
    netopen(uart)
    assert emu.state()["netopen"] is True
    cmd(uart, b"AT+NETOPEN", b"\r\n+IP ERROR: Network is already opened\r\n" + ERROR)
    cmd(uart, b"AT+NETOPEN?", info(b"+NETOPEN: 1"))
    cmd(uart, b"AT+IPADDR", info(b"+IPADDR: 10.71.155.118"))
    cmd(uart, b"AT+NETCLOSE", OK + b"\r\n+NETCLOSE: 0\r\n")
    assert emu.state()["netopen"] is False


def test_cipopen_forms_and_the_socket_table(uart, emu, echo):
    port = port_of(echo.address)
    cmd(uart, b'AT+CIPOPEN=0,"TCP","127.0.0.1",%d' % port,
        b"\r\n+IP ERROR: Network not opened\r\n" + ERROR)
    netopen(uart)
    cmd(uart, b'AT+CIPOPEN=10,"TCP","127.0.0.1",%d' % port,
        b"\r\n+IP ERROR: Invalid parameter\r\n" + ERROR)
    cmd(uart, b'AT+CIPOPEN=0,"TCP","127.0.0.1",0', b"\r\n+IP ERROR: Invalid parameter\r\n" + ERROR)
    cipopen(uart, 0, port)
    cmd(uart, b'AT+CIPOPEN=0,"TCP","127.0.0.1",%d' % port,
        b"\r\n+IP ERROR: Connection is already created\r\n" + ERROR)
    cmd(uart, b'AT+CIPOPEN=3,"TCP","localhost",%d' % port, OK + b"\r\n+CIPOPEN: 3,0\r\n")
    lines = [b'+CIPOPEN: 0,"TCP","127.0.0.1",%d,-1' % port]
    lines += [b"+CIPOPEN: %d" % n for n in (1, 2)]
    lines += [b'+CIPOPEN: 3,"TCP","localhost",%d,-1' % port]
    lines += [b"+CIPOPEN: %d" % n for n in range(4, 10)]
    cmd(uart, b"AT+CIPOPEN?", info(*lines))
    cmd(uart, b"AT+CIPCLOSE?", info(b"+CIPCLOSE: 1,0,0,1,0,0,0,0,0,0"))
    assert emu.state()["links"] == [0, 3]


def test_only_loopback_is_bridged_and_a_refused_connect_fails(uart, emu):
    netopen(uart)
    cmd(uart, b'AT+CIPOPEN=1,"TCP","8.8.8.8",53', OK + b"\r\n+CIPOPEN: 1,1\r\n")
    cmd(uart, b'AT+CIPOPEN=2,"TCP","broker.example.com",1883', OK + b"\r\n+CIPOPEN: 2,11\r\n")
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]
    cmd(uart, b'AT+CIPOPEN=4,"TCP","127.0.0.1",%d' % closed_port, OK + b"\r\n+CIPOPEN: 4,1\r\n")
    cmd(uart, b'AT+CIPOPEN=5,"UDP","127.0.0.1",53',
        b"\r\n+IP ERROR: Operation not supported\r\n" + ERROR)
    assert emu.state()["links"] == []


def test_cipsend_prompt_payload_and_confirmation_reach_the_server(uart, server):
    netopen(uart)
    cmd(uart, b"AT+CIPSEND=0,5", b"\r\n+CIPERROR: 4\r\n" + ERROR)
    cipopen(uart, 0, server.getsockname()[1])
    peer, _ = server.accept()
    peer.settimeout(2)
    cmd(uart, b"AT+CIPSEND=0,0", b"\r\n+IP ERROR: Invalid parameter\r\n" + ERROR)
    cmd(uart, b"AT+CIPSEND=0,1501", b"\r\n+IP ERROR: Invalid parameter\r\n" + ERROR)
    cmd(uart, b"AT+CIPSEND=0,12", b"\r\n>")
    uart.send(b"\r\nAT\rOK\r\n+IP")  # payload is taken by count, whatever it looks like
    uart.expect(OK + b"\r\n+CIPSEND: 0,12,12\r\n")
    assert peer.recv(100) == b"\r\nAT\rOK\r\n+IP"
    uart.send(b"AT+CIPSEND=0,3\r\n")  # CR LF host: the LF is not payload
    uart.expect(b"\r\n>")
    uart.send(b"xyz")
    uart.expect(OK + b"\r\n+CIPSEND: 0,3,3\r\n")
    assert peer.recv(100) == b"xyz"
    cmd(uart, b"AT+CIPCLOSE=0", OK + b"\r\n+CIPCLOSE: 0,0\r\n")
    assert peer.recv(100) == b""  # a polite close: FIN
    peer.close()


def test_manual_receive_urc_arrives_once_until_the_buffer_is_read_empty(uart, server, emu):
    cmd(uart, b"AT+CIPRXGET=1", OK)
    netopen(uart)
    cipopen(uart, 0, server.getsockname()[1])
    peer, _ = server.accept()
    peer.sendall(b"hello")
    uart.expect(b"\r\n+CIPRXGET: 1,0\r\n")
    peer.sendall(b" world")
    cmd(uart, b"AT+CIPRXGET=4,0", info(b"+CIPRXGET: 4,0,11"))  # no second URC
    cmd(uart, b"AT+CIPRXGET=2,0,4", b"\r\n+CIPRXGET: 2,0,4,7\r\nhell\r\nOK\r\n")
    peer.sendall(b"!")
    cmd(uart, b"AT+CIPRXGET=4,0", info(b"+CIPRXGET: 4,0,8"))  # still not read empty: no URC
    cmd(uart, b"AT+CIPRXGET=2,0,1500", b"\r\n+CIPRXGET: 2,0,8,0\r\no world!\r\nOK\r\n")
    cmd(uart, b"AT+CIPRXGET=2,0,10", b"\r\n+IP ERROR: No data\r\n" + ERROR)
    cmd(uart, b"AT+CIPRXGET=2,0,1501", b"\r\n+IP ERROR: Invalid parameter\r\n" + ERROR)
    peer.sendall(b"again")  # read empty: the URC is armed again
    uart.expect(b"\r\n+CIPRXGET: 1,0\r\n")
    cmd(uart, b"AT+CIPRXGET=2,0,100", b"\r\n+CIPRXGET: 2,0,5,0\r\nagain\r\nOK\r\n")
    peer.close()
    uart.expect(b"\r\n+IPCLOSE: 0,1\r\n")
    assert emu.state()["links"] == []


def test_push_mode_headers_follow_cipsrip_ciphead_and_cipccfg(uart, server):
    netopen(uart)
    cipopen(uart, 0, server.getsockname()[1])
    peer, _ = server.accept()
    port = server.getsockname()[1]
    peer.sendall(b"abc")
    uart.expect(b"\r\nRECV FROM:127.0.0.1:%d\r\n+IPD3\r\nabc" % port)
    cmd(uart, b"AT+CIPSRIP=0", OK)
    peer.sendall(b"de")
    uart.expect(b"\r\n+IPD2\r\nde")
    cmd(uart, b"AT+CIPHEAD=0", OK)
    peer.sendall(b"f")
    uart.expect(b"f")
    cmd(uart, b"AT+CIPCCFG=10,0,0,0,1,0,75000", OK)
    peer.sendall(b"gh")
    uart.expect(b"\r\n+RECEIVE,0,2\r\ngh")
    peer.close()
    uart.expect(b"\r\n+IPCLOSE: 0,1\r\n")


def test_bytes_buffered_before_leaving_manual_mode_are_pushed(uart, server):
    cmd(uart, b"AT+CIPRXGET=1", OK)
    netopen(uart)
    cipopen(uart, 0, server.getsockname()[1])
    peer, _ = server.accept()
    peer.sendall(b"kept")
    uart.expect(b"\r\n+CIPRXGET: 1,0\r\n")
    cmd(uart, b"AT+CIPRXGET=0", OK + b"\r\nRECV FROM:127.0.0.1:%d\r\n+IPD4\r\nkept"
        % server.getsockname()[1])
    peer.close()


def test_bytes_sent_before_a_remote_close_can_still_be_read(uart, server, emu):
    cmd(uart, b"AT+CIPRXGET=1", OK)
    netopen(uart)
    cipopen(uart, 0, server.getsockname()[1])
    peer, _ = server.accept()
    peer.sendall(b"bye")
    peer.close()
    uart.expect(b"\r\n+CIPRXGET: 1,0\r\n\r\n+IPCLOSE: 0,1\r\n")
    assert emu.state()["links"] == []
    cmd(uart, b"AT+CIPRXGET=2,0,100", b"\r\n+CIPRXGET: 2,0,3,0\r\nbye\r\nOK\r\n")
    cmd(uart, b"AT+CIPCLOSE=0", b"\r\n+CIPCLOSE: 0,4\r\n" + ERROR)
    cmd(uart, b"AT+CIPCLOSE=10", b"\r\n+IP ERROR: Invalid parameter\r\n" + ERROR)


def test_a_full_buffer_holds_the_remote_back_and_loses_nothing(uart, server):
    cmd(uart, b"AT+CIPRXGET=1", OK)
    netopen(uart)
    cipopen(uart, 0, server.getsockname()[1])
    peer, _ = server.accept()
    sent = bytes(range(256)) * 400  # 102400 bytes, more than the 64 KiB buffer
    sender = threading.Thread(target=lambda: (peer.sendall(sent), peer.close()))
    sender.start()  # it blocks once the 64 KiB buffer and the kernel's are full
    uart.expect(b"\r\n+CIPRXGET: 1,0\r\n")
    deadline = time.monotonic() + 2
    pending = 0
    while pending < 65536 and time.monotonic() < deadline:
        uart.send(b"AT+CIPRXGET=4,0\r")
        pending = int(next_line(uart).split(b",")[2])
        uart.expect(OK)
    assert pending == 65536  # full, and no further
    assert read_link(uart, len(sent), largest_rest=65536) == sent
    sender.join(5)
    assert not sender.is_alive()


def test_netclose_cpof_and_network_loss_leave_the_socket_table_empty(uart, emu, echo):
    port = port_of(echo.address)
    netopen(uart)
    cipopen(uart, 0, port)
    cipopen(uart, 1, port)
    cmd(uart, b"AT+NETCLOSE", OK + b"\r\n+NETCLOSE: 0\r\n")
    assert emu.state()["links"] == []
    cmd(uart, b"AT+CIPCLOSE?", info(b"+CIPCLOSE: 0,0,0,0,0,0,0,0,0,0"))
    netopen(uart)
    cipopen(uart, 2, port)
    control = Control(emu.control_address)
    assert control.ask("SET 25 0") == "OK"  # flight mode while the network is open
    uart.expect(b"\r\n+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY\r\n")
    assert emu.state()["links"] == [] and emu.state()["netopen"] is False
    assert control.ask("SET 25 1") == "OK"
    netopen(uart)
    cipopen(uart, 3, port)
    cmd(uart, b"AT+CPOF", OK)
    assert uart.drain() == b""
    state = emu.state()
    assert state["links"] == [] and state["powered"] is False and state["status_pin"] == 0
    control.close()


def test_data_keeps_flowing_through_an_echo_server(uart, echo, emu):
    cmd(uart, b"AT+CIPRXGET=1", OK)
    netopen(uart)
    cipopen(uart, 0, port_of(echo.address))
    for size in (1, 100, 1500):
        payload = bytes((size + i) % 256 for i in range(size))
        cmd(uart, b"AT+CIPSEND=0,%d" % size, b"\r\n>")
        uart.send(payload)
        uart.expect(OK)
        assert read_link(uart, size) == payload
        uart.drain(0.02)
    cmd(uart, b"AT+CIPCLOSE=0", OK + b"\r\n+CIPCLOSE: 0,0\r\n")
    assert emu.state()["links"] == []
