from cellmqtt.errors import LimitExceeded
from cellmqtt.ledger import FILE, LINK, TASK, UART, Ledger, LedgerError
from cellmqtt.shell import list_fd_report
from support import raises


def test_acquire_and_release_reuse_lowest_numbers():
    book = Ledger()
    a = book.acquire(UART, "AT", "UART1 115200")
    b = book.acquire(LINK, "LINK", "#0")
    assert (a, b) == (0, 1)
    book.release(a)
    assert book.acquire(TASK, "MQTT", "reader") == 0
    assert len(book) == 2


def test_deliberate_leak_is_named_by_owner_and_kind():
    book = Ledger()
    book.acquire(UART, "AT", "UART1 115200")
    book.mark_baseline()
    kept = book.acquire(LINK, "LINK", "#3 127.0.0.1:1883")
    released = book.acquire(TASK, "MQTT", "keepalive")
    book.release(released)
    leaks = book.extra()
    assert not book.at_baseline()
    assert len(leaks) == 1
    assert (leaks[0].owner, leaks[0].kind, leaks[0].detail) == ("LINK", LINK, "#3 127.0.0.1:1883")
    report = list_fd_report(book)
    assert " 1 link" in report and "LINK" in report
    book.release(kept)
    assert book.at_baseline()


def test_baseline_entry_replaced_under_same_number_is_not_baseline():
    book = Ledger()
    fd = book.acquire(UART, "AT", "UART1")
    book.mark_baseline()
    book.release(fd)
    assert book.acquire(FILE, "APP", "queue.jnl") == fd
    assert not book.at_baseline()
    assert book.extra()[0].kind == FILE


def test_shared_entry_stays_until_every_holder_released():
    book = Ledger()
    fd = book.acquire(UART, "AT", "UART1")
    book.share(fd)
    book.release(fd)
    assert len(book) == 1 and book.entries()[0].ref == 1
    book.release(fd)
    assert len(book) == 0


def test_release_of_unknown_number_is_a_typed_error():
    book = Ledger()
    error = raises(LedgerError, book.release, 7)
    assert "fd 7" in str(error)


def test_capacity_is_a_bound_not_growth():
    book = Ledger(capacity=3)
    for _ in range(3):
        book.acquire(TASK, "MQTT", "t")
    error = raises(LimitExceeded, book.acquire, TASK, "MQTT", "t")
    assert error.limit == 3


def test_count():
    book = Ledger()
    book.acquire(TASK, "MQTT", "reader")
    book.acquire(TASK, "MQTT", "keepalive")
    book.acquire(UART, "AT", "UART1")
    assert book.count(kind=TASK) == 2 and book.count(owner="AT") == 1 and book.count() == len(book) == 3


def _cycle(book=Ledger()):
    fds = [book.acquire(LINK, "LINK", "#0"), book.acquire(TASK, "MQTT", "reader")]
    for fd in fds:
        book.release(fd)


def test_steady_cycle_retains_nothing():
    from support import MICROPYTHON, retained_bytes

    retained = retained_bytes(_cycle, 200)
    assert retained == 0 if MICROPYTHON else retained < 1024
