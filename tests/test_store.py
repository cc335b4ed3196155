# The durable queue: API, bounds, and power cuts at every byte of every write.
import os

from cellmqtt.errors import LimitExceeded, StateError
from cellmqtt.ledger import FILE, Ledger
from cellmqtt.store import JOURNAL, TEMP, Store
from support import MICROPYTHON, raises, remove_tree, retained_bytes, temp_folder

BOUNDS = {"max_readings": 4, "max_bytes": 260, "max_reading_bytes": 48}


def _with_folder(test):
    """Run test(folder) with a fresh queue folder inside a temporary one."""
    root = temp_folder("cellmqtt-store")
    try:
        return test(root + "/q")
    finally:
        remove_tree(root)


def _reading(i, pad=0):
    return {"v": i, "pad": "x" * pad}


def _state(q):
    return (q.peek(q.depth, raw=True), q.dropped, q.next_seq)


class PowerCut(Exception):
    """The power failed: nothing after this reaches the disk."""


class _CutFile:
    def __init__(self, files, real):
        self._files = files
        self._real = real

    def write(self, data):
        allowed = self._files.step(len(data))
        if allowed:
            self._real.write(bytes(data[:allowed]))
        if allowed < len(data):
            raise PowerCut()
        return len(data)

    def readinto(self, buffer):
        self._files.alive()
        return self._real.readinto(buffer)

    def read(self, n):
        self._files.alive()
        return self._real.read(n)

    def seek(self, offset):
        return self._real.seek(offset)

    def close(self):
        self._real.close()  # what was written is on disk; closing adds nothing


class OsFiles:
    """The file operations a Store does by default, for the doubles below to keep."""

    open = staticmethod(open)
    rename = staticmethod(os.rename)
    remove = staticmethod(os.remove)
    listdir = staticmethod(os.listdir)
    mkdir = staticmethod(os.mkdir)


class CutFiles(OsFiles):
    """Counts every step that changes the disk (an open for writing, each byte
    written, a rename, a remove, a mkdir); after `cut_at` steps the power fails:
    the bytes before that point are on disk, nothing after it. `fat` makes rename
    refuse to replace a file, as FAT does."""

    def __init__(self, cut_at=-1, fat=False):
        self.cut_at = cut_at
        self.fat = fat
        self.steps = 0
        self.dead = False
        self.op_steps = []  # the step numbers of whole-operation steps

    def alive(self):
        if self.dead:
            raise PowerCut()

    def step(self, n=1):
        """Take n steps; returns how many happened before the power failed."""
        self.alive()
        if self.cut_at < 0 or self.steps + n <= self.cut_at:
            self.steps += n
            return n
        done = self.cut_at - self.steps
        self.steps = self.cut_at
        self.dead = True
        return done

    def _op(self):
        self.op_steps.append(self.steps)
        if self.step() < 1:
            raise PowerCut()

    def open(self, path, mode):
        if "w" in mode or "a" in mode:
            self._op()
        else:
            self.alive()
        return _CutFile(self, open(path, mode))

    def rename(self, old, new):
        self.alive()
        if self.fat and new.rpartition("/")[2] in os.listdir(new.rpartition("/")[0]):
            raise OSError(17)  # EEXIST, before anything changed
        self._op()
        os.rename(old, new)

    def remove(self, path):
        self._op()
        os.remove(path)

    def listdir(self, path):
        self.alive()
        return os.listdir(path)

    def mkdir(self, path):
        self._op()
        os.mkdir(path)


# -- the API --------------------------------------------------------------------


def test_append_peek_ack_round_trip():
    def check(folder):
        q = Store(folder, ledger=Ledger())
        assert q.next_seq == 1 and len(q) == 0 and q.peek(5) == []
        seqs = [q.append(_reading(i)) for i in range(4)]
        assert seqs == [1, 2, 3, 4] and len(q) == 4 and q.depth == 4
        assert q.peek(2) == [(1, {"seq": 1, "v": 0, "pad": ""}), (2, {"seq": 2, "v": 1, "pad": ""})]
        raw = q.peek(1, raw=True)[0]
        assert raw[0] == 1 and raw[1].startswith(b'{"seq": 1, ')
        assert q.append({}) == 5 and q.peek(9)[-1] == (5, {"seq": 5})
        assert q.ack(2) == 2 and [seq for seq, _ in q.peek(9)] == [3, 4, 5]
        assert q.ack(2) == 0 and q.ack(1) == 0
        assert q.ack(5) == 3 and len(q) == 0 and q.peek(9) == []
        assert (q.depth, q.dropped, q.next_seq) == (0, 0, 6)
    _with_folder(check)


def test_seq_and_contents_survive_reopen_and_compaction():
    def check(folder):
        q = Store(folder)
        for i in range(3):
            q.append(_reading(i))
        q.ack(3)  # all acknowledged: the journal is rewritten as a single mark
        assert q.size == 16
        q.close()
        q = Store(folder)
        assert q.next_seq == 4 and len(q) == 0
        q.append(_reading(3))
        q.append(_reading(4))
        q.ack(4)
        before = _state(q)
        q = Store(folder)
        assert _state(q) == before and q.peek(1)[0] == (5, {"seq": 5, "v": 4, "pad": ""})
    _with_folder(check)


def test_overflow_by_count_drops_oldest_and_counts():
    def check(folder):
        q = Store(folder, max_readings=3)
        for i in range(5):
            q.append(_reading(i))
        assert len(q) == 3 and q.dropped == 2
        assert [seq for seq, _ in q.peek(9)] == [3, 4, 5]
        q = Store(folder, max_readings=3)
        assert q.dropped == 2 and [seq for seq, _ in q.peek(9)] == [3, 4, 5] and q.next_seq == 6
    _with_folder(check)


def test_overflow_by_bytes_keeps_the_journal_within_its_bound():
    def check(folder):
        q = Store(folder, max_readings=1000, max_bytes=400, max_reading_bytes=64)
        for i in range(60):
            q.append(_reading(i, pad=i % 20))
            assert q.size <= 400, q.size
        assert q.dropped > 0 and len(q) + q.dropped == 60
        seqs = [seq for seq, _ in q.peek(100)]
        assert seqs == list(range(61 - len(seqs), 61))
        assert os.stat(folder + "/" + JOURNAL)[6] == q.size
        assert _state(Store(folder, max_readings=1000, max_bytes=400, max_reading_bytes=64)) == _state(q)
    _with_folder(check)


def test_oversized_reading_is_a_typed_error_naming_the_bound():
    def check(folder):
        q = Store(folder, max_reading_bytes=40)
        q.append(_reading(1))
        error = raises(LimitExceeded, q.append, _reading(2, pad=40))
        assert error.limit == 40 and "queue.max_reading_bytes" in str(error)
        assert q.next_seq == 2 and len(q) == 1
        assert q.append(_reading(3)) == 2
    _with_folder(check)


def test_readings_must_be_dicts_without_seq():
    def check(folder):
        q = Store(folder)
        raises(ValueError, q.append, {"seq": 7})
        raises(ValueError, q.append, [1, 2])
        assert len(q) == 0 and q.next_seq == 1
    _with_folder(check)


def test_ack_beyond_what_was_appended_is_refused():
    def check(folder):
        q = Store(folder)
        q.append(_reading(1))
        error = raises(StateError, q.ack, 2)
        assert error.machine == "store" and len(q) == 1
    _with_folder(check)


def test_a_closed_store_refuses_every_call():
    def check(folder):
        q = Store(folder)
        q.close()
        q.close()
        assert raises(StateError, q.append, _reading(1)).state == "closed"
        raises(StateError, q.peek, 1)
        raises(StateError, q.ack, 0)
    _with_folder(check)


class _WatchedFiles(OsFiles):
    """Notes how many FILE entries the ledger holds at each open, and the bytes read."""

    def __init__(self, book):
        self.book = book
        self.held = []
        self.bytes_read = 0

    def open(self, path, mode):
        self.held.append(self.book.count(FILE, "APP"))
        return _CountingFile(self, open(path, mode))


class _CountingFile:
    def __init__(self, files, real):
        self._files = files
        self._real = real
        self.write = real.write
        self.seek = real.seek
        self.close = real.close

    def readinto(self, buffer):
        n = self._real.readinto(buffer)
        self._files.bytes_read += n or 0
        return n

    def read(self, n):
        data = self._real.read(n)
        self._files.bytes_read += len(data)
        return data


def test_files_are_in_the_ledger_only_while_open():
    def check(folder):
        book = Ledger()
        files = _WatchedFiles(book)
        q = Store(folder, ledger=book, files=files, **BOUNDS)
        for i in range(12):
            q.append(_reading(i))
            assert len(book) == 0
        q.peek(3)
        q.ack(q.next_seq - 2)
        q.ack(q.next_seq - 1)
        assert len(book) == 0
        # each open is recorded before it happens: one file, or two while compacting
        assert min(files.held) == 1 and max(files.held) == 2
        assert book.entries() == []
    _with_folder(check)


def test_peek_reads_only_what_it_returns():
    def check(folder):
        files = _WatchedFiles(Ledger())
        q = Store(folder, files=files, max_readings=100, max_bytes=4096)
        for i in range(20):
            q.append(_reading(i, pad=30))
        q.ack(15)  # leaves dead readings and a mark in front of the head
        files.bytes_read = 0
        batch = q.peek(2, raw=True)
        assert [seq for seq, _ in batch] == [16, 17]
        assert files.bytes_read == sum(12 + len(body) for _, body in batch)
    _with_folder(check)


def test_torn_tail_is_repaired_so_later_appends_are_kept():
    def check(folder):
        q = Store(folder)
        q.append(_reading(1))
        q.append(_reading(2))
        with open(folder + "/" + JOURNAL, "ab") as f:
            f.write(b"\xc5R\x30\x00\x03\x00")  # half a header: power failed here
        q = Store(folder)
        assert [seq for seq, _ in q.peek(9)] == [1, 2] and q.next_seq == 3
        q.append(_reading(3))
        q = Store(folder)
        assert [seq for seq, _ in q.peek(9)] == [1, 2, 3]
    _with_folder(check)


def test_a_corrupt_record_ends_the_journal():
    def check(folder):
        q = Store(folder)
        for i in range(3):
            q.append(_reading(i))
        with open(folder + "/" + JOURNAL, "rb") as f:
            data = bytearray(f.read())
        data[-3] ^= 0x40  # a flipped bit in the last reading's body: its checksum fails
        with open(folder + "/" + JOURNAL, "wb") as f:
            f.write(data)
        q = Store(folder)
        assert [seq for seq, _ in q.peek(9)] == [1, 2] and q.next_seq == 3
    _with_folder(check)


def test_leftover_temporary_file_is_dropped_or_promoted():
    def check(folder):
        q = Store(folder)
        q.append(_reading(1))
        with open(folder + "/" + TEMP, "wb") as f:
            f.write(b"\xc5A\x04")  # a rewrite that never finished
        q = Store(folder)
        assert [seq for seq, _ in q.peek(9)] == [1] and TEMP not in os.listdir(folder)
        # cut between removing the journal and renaming (FAT): the temporary file is whole
        os.rename(folder + "/" + JOURNAL, folder + "/" + TEMP)
        q = Store(folder)
        assert [seq for seq, _ in q.peek(9)] == [1] and os.listdir(folder) == [JOURNAL]
    _with_folder(check)


class _FailingFiles(OsFiles):
    """The flash fills up in the middle of one write."""

    def __init__(self):
        self.fail_next_write = False

    def open(self, path, mode):
        real = open(path, mode)
        if "a" in mode and self.fail_next_write:
            self.fail_next_write = False
            return _FullFile(real)
        return real


class _FullFile:
    def __init__(self, real):
        self._real = real
        self.close = real.close

    def write(self, data):
        self._real.write(bytes(data[:5]))
        raise OSError(28)  # ENOSPC


def test_a_failed_write_is_recovered_before_the_next_call():
    def check(folder):
        files = _FailingFiles()
        q = Store(folder, files=files, max_readings=100, max_bytes=4096)
        q.append(_reading(1))
        files.fail_next_write = True
        raises(OSError, q.append, _reading(2))
        assert q.append(_reading(3)) == 2  # seq 2 was never handed out
        assert q.append(_reading(4)) == 3
        assert [(seq, body["v"]) for seq, body in Store(folder).peek(9)] == [(1, 1), (2, 3), (3, 4)]
    _with_folder(check)


def test_a_duty_cycle_retains_no_memory():
    def check(folder):
        q = Store(folder, ledger=Ledger(), **BOUNDS)
        reading = _reading(1)

        def cycle():
            for _ in range(3):
                q.append(reading)
            batch = q.peek(3, raw=True)
            q.ack(batch[-1][0])

        retained = retained_bytes(cycle, 30)
        assert retained == 0 if MICROPYTHON else retained < 2048, retained
        assert len(q) == 0 and q.size == 16
    _with_folder(check)


# -- power cuts -----------------------------------------------------------------

# appends, acknowledgements, drops for both bounds and rewrites, in one run:
# an ACK appended, a DROP with its reading, a rewrite with a drop and the new
# reading, a rewrite of a mostly dead journal
SCENARIO = (
    [("append", {"v": i}) for i in range(3)]
    + [("ack", 1)]
    + [("append", {"v": i}) for i in range(3, 5)]
    + [("append", {"v": i, "p": "x" * 16}) for i in range(5, 7)]
    + [("ack", 5), ("ack", 7), ("append", {"v": 7})]
)


def _run(folder, files, trace=None):
    """Open the store and play the scenario, appending the state after each step to
    trace if given; returns the step the power was cut in (0: the opening), or -1."""
    step = 0
    try:
        q = Store(folder, ledger=Ledger(), files=files, **BOUNDS)
        if trace is not None:
            trace.append(_state(q))
        for step, (action, argument) in enumerate(SCENARIO, 1):
            if action == "append":
                q.append(argument)
            else:
                q.ack(argument)
            if trace is not None:
                trace.append(_state(q))
    except PowerCut:
        return step
    return -1


def _reboot_and_check(folder, expected, cut_step, returned):
    book = Ledger()
    q = Store(folder, ledger=book, **BOUNDS)
    state = _state(q)
    before, after = expected[cut_step], expected[cut_step + 1]
    assert state == before or state == after, (cut_step, state, before, after)
    again = Store(folder, **BOUNDS)
    assert _state(again) == state  # recovery left a clean journal
    seq = again.append({"after": 1})
    assert seq > returned and seq == state[2], (seq, returned)  # never reused
    assert len(book) == 0


def _power_cut_matrix(cuts, fat=False, recovery_cuts=False):
    """Cut the power after each step count in cuts, reboot, check. Returns the number
    of cases run."""
    root = temp_folder("cellmqtt-store")
    cases = 0
    try:
        expected = [([], 0, 1)]
        files = CutFiles()
        assert _run(root + "/ref", files, expected) == -1
        for cut_at in cuts(files):
            if cut_at >= files.steps:
                continue
            folder = "%s/c%d" % (root, cut_at)
            cut_step = _run(folder, CutFiles(cut_at, fat))
            assert cut_step >= 0
            returned = expected[cut_step][2] - 1  # the last seq handed out before the cut
            if recovery_cuts:
                cases += _cut_recovery(folder, expected, cut_step, returned)
            _reboot_and_check(folder, expected, cut_step, returned)
            remove_tree(folder)
            cases += 1
    finally:
        remove_tree(root)
    return cases


def _cut_recovery(folder, expected, cut_step, returned):
    """Cut the power again at every step of the recovery of folder (it is restored
    from a copy each time); returns the number of cases."""
    names = os.listdir(folder)
    saved = {}
    for name in names:
        with open(folder + "/" + name, "rb") as f:
            saved[name] = f.read()
    probe = CutFiles()
    Store(folder, files=probe, **BOUNDS)
    cases = 0
    for cut_at in range(probe.steps):
        _restore(folder, saved)
        try:
            Store(folder, files=CutFiles(cut_at), **BOUNDS)
        except PowerCut:
            pass
        _reboot_and_check(folder, expected, cut_step, returned)
        cases += 1
    _restore(folder, saved)
    return cases


def _restore(folder, saved):
    for name in os.listdir(folder):
        os.remove(folder + "/" + name)
    for name, data in saved.items():
        with open(folder + "/" + name, "wb") as f:
            f.write(data)


def test_power_cut_at_every_step_loses_nothing():
    # every byte of every write, and between every two operations
    cases = _power_cut_matrix(lambda files: range(files.steps))
    assert cases >= 500, cases


def test_power_cut_during_recovery_loses_nothing():
    # a cut during the repair of a torn tail (in the middle of a rewrite)
    cases = _power_cut_matrix(lambda files: range(7, files.steps, 97), recovery_cuts=True)
    assert cases > 200, cases


def test_power_cut_where_rename_cannot_replace_loses_nothing():
    # FAT: the journal is removed before the rename; cut at and around every operation
    def around_operations(files):
        return sorted(set(k + d for k in files.op_steps for d in (-1, 0, 1, 2) if k + d >= 0))
    cases = _power_cut_matrix(around_operations, fat=True)
    assert cases > 40, cases

