from cellmqtt import shell
from cellmqtt.ledger import LINK, UART, ledger


def _numbers(report):
    return [int(line.rpartition(":")[2]) for line in report.split("\n")]


def test_free_prints_three_msh_lines_with_real_numbers():
    lines = repr(shell.free).split("\n")
    assert [line.rpartition(":")[0] for line in lines] == [
        "total memory", "used memory ", "maximum allocated memory"]
    total, used, peak = _numbers(repr(shell.free))
    assert 0 < used < total and used <= peak


def test_free_sees_an_allocation():
    _, before, _ = _numbers(repr(shell.free))
    block = bytearray(4096)
    _, after, _ = _numbers(repr(shell.free))
    assert after - before >= 4096
    assert len(block) == 4096


def test_list_fd_prints_the_ledger_in_msh_columns():
    fd = ledger.acquire(UART, "AT", "UART1 115200")
    link = ledger.acquire(LINK, "LINK", "#0 127.0.0.1:1883")
    try:
        lines = repr(shell.list_fd).split("\n")
        assert lines[0] == "fd type    ref owner  detail"
        assert lines[1] == "-- ------  --- -----  ------"
        assert "%2d uart      1 AT     UART1 115200" % fd in lines
        assert "%2d link      1 LINK   #0 127.0.0.1:1883" % link in lines
    finally:
        ledger.release(link)
        ledger.release(fd)


def test_install_puts_bare_words_into_a_namespace():
    namespace = {}
    shell.install(namespace)
    assert namespace["free"] is shell.free and namespace["list_fd"] is shell.list_fd
