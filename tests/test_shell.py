from cellmqtt import shell
from cellmqtt.ledger import LINK, UART, ledger
from support import MICROPYTHON, raises


def _numbers(report):
    return [int(line.rpartition(":")[2]) for line in report.split("\n")]


def test_free_prints_the_msh_lines_and_the_largest_free_block_with_real_numbers():
    lines = repr(shell.free).split("\n")
    assert [line.rpartition(":")[0] for line in lines] == [
        "total memory", "used memory ", "maximum allocated memory", "largest free block"]
    total, used, peak, largest = _numbers(repr(shell.free))
    assert 0 < used < total and used <= peak
    assert 0 < largest <= total - used + 1024  # CPython: its traced figure moves a little


def test_free_sees_an_allocation():
    _, before, _, _ = _numbers(repr(shell.free))
    block = bytearray(4096)
    _, after, _, _ = _numbers(repr(shell.free))
    # a stale word on the C stack may keep the last probe's MemoryError (a few blocks) a while
    assert after - before >= 4096 - 256
    assert len(block) == 4096


def test_the_largest_free_block_is_what_one_allocation_gets():
    largest = _numbers(repr(shell.free))[3]
    block = bytearray(largest)  # fits
    assert len(block) == largest
    block = None
    if MICROPYTHON:  # CPython's notional heap has no blocks to run out of
        raises(MemoryError, bytearray, largest + 1024)


def test_free_shows_fragmentation_under_micropython():
    if not MICROPYTHON:
        return
    held = []
    try:
        while True:
            held.append(bytearray(1024))
    except MemoryError:
        pass
    for i in range(0, len(held), 2):  # every other kilobyte back: lots free, nothing large
        held[i] = None
    total, used, _, largest = _numbers(repr(shell.free))
    assert largest < 8192 and total - used > 8 * largest, (total, used, largest)
    held = None
    total, used, _, largest = _numbers(repr(shell.free))
    assert largest > 32768, (total, used, largest)


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


def test_in_deep_sleep_the_reports_end_with_what_the_last_window_recorded_and_when():
    import os

    from support import remove_tree, temp_folder

    here = os.getcwd()
    folder = temp_folder("shell")
    os.chdir(folder)
    try:
        assert shell.recorded() == ""  # none recorded: the reports are the live ones alone
        shell.record("window 7 ok delivered=5 used=40000")
        for command in (shell.free, shell.list_fd, shell.netstat):
            lines = repr(command).split("\n")
            assert lines[-2] in ("deep sleep: nothing runs between windows; the last one, 0 s ago:",
                                 "deep sleep: nothing runs between windows; the last one, 1 s ago:")
            assert lines[-1] == "window 7 ok delivered=5 used=40000"
    finally:
        os.chdir(here)
        remove_tree(folder)
