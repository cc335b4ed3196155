"""The durable queue: readings stay on flash until the broker acknowledged them.

How it works. One append-only journal file holds three kinds of record:
  READING  its seq and the reading's JSON (with "seq" in it, ready to publish);
  ACK      a floor (every seq <= floor is gone: acknowledged or dropped) and the
           total count of readings dropped by the overflow policy;
  DROP     the same, written just before the READING whose arrival overflowed the
           count bound; it counts only once that READING is whole, so the drop and
           the append happen together or not at all.
A record is a 12-byte header (magic, kind, length, seq, crc32 of header and body)
and its body. The state is a fold over the records: floor and dropped from the
highest mark, live readings = seq > floor, next seq = max(floor, last seq) + 1.

A power cut can only tear what is being appended: open() scans up to the first
record that is short or fails its checksum (or a DROP without its READING) and
rewrites the journal without the rest. Rewrites (that repair, acknowledgements
that leave the journal mostly dead, appends that hit the bytes bound) write an
ACK, the live readings and any new reading to a temporary file and rename it over
the journal: rename is atomic on littlefs and POSIX, so a cut leaves the old
journal or the new one. Where rename will not replace a file
(FAT), the journal is removed first; a temporary file found without a journal is
then promoted, as it is complete (or the very first journal, which held nothing).
Files are opened, used and closed within each call: nothing stays open.
"""

import binascii
import json
import os
import struct

from ._const import const
from .errors import LimitExceeded, StateError
from .ledger import FILE
from .ledger import ledger as _device_ledger

_MAGIC = const(0xC5)
_READING = const(0x52)  # "R"
_ACK = const(0x41)  # "A"
_DROP = const(0x44)  # "D"
_HEADER = const(12)  # magic u8, kind u8, length u16, seq u32, crc32 u32
_MARK_SIZE = const(16)  # an ACK or DROP: header + the dropped count (u32)
# what max_bytes needs besides the largest reading (config.py checks the bounds at boot;
# max_reading_bytes stays under the u16 length field)
RECORD_OVERHEAD = const(_MARK_SIZE + _HEADER)
# the u32 seq on flash: at one reading a second it lasts 136 years, so past it the store
# refuses (typed) rather than wrap; past 2**30 (34 years at 1 s, 2,000 at 1 min) the
# seq is a long int on a 32-bit port, and an append allocates anyway
_MAX_SEQ = const(0xFFFFFFFF)
_CHUNK = const(128)  # checksum and copy buffer: one per store, small on purpose
_EIO = const(5)
_HEAD_FORMAT = "<BBHI"

JOURNAL = "journal"
TEMP = "journal.tmp"


class _Opened:
    """A file open for one operation, in the ledger (FILE, APP) while it is open."""

    def __init__(self, store, name, mode):
        path = store.path + "/" + name
        self._ledger = book = store._ledger
        self._fd = book.acquire(FILE, "APP", path)
        try:
            self._file = store._open(path, mode)
        except BaseException:
            book.release(self._fd)
            raise

    def __enter__(self):
        return self._file

    def __exit__(self, *exc_info):
        try:
            self._file.close()
        finally:
            self._ledger.release(self._fd)


def _check_json(value, where):
    """Only what strict JSON can carry: a NaN from a failed sensor, or an object whose
    repr MicroPython's json would write, must not reach the broker."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                where = where + " key"
                value = key
                break
            _check_json(item, where + "." + key)
        else:
            return
    elif kind is list or kind is tuple:
        for item in value:
            _check_json(item, where + "[]")
        return
    elif kind is float:
        if value - value == 0:  # NaN and infinities give NaN
            return
    elif kind is str or kind is int or kind is bool or value is None:
        return
    raise ValueError("%s: %r is not JSON" % (where, value))


class Store:
    """A bounded, crash-safe FIFO of readings in the folder `path` (which it
    creates; its parent must exist). Overflow drops the oldest readings and
    counts them; a reading larger than max_reading_bytes is refused. The bounds are
    config.py's queue section, checked there. `files` does its file operations (open,
    rename, remove, listdir, mkdir): by default the os module and open themselves; tests
    pass one that cuts the power at any byte."""

    def __init__(self, path, max_readings=1000, max_bytes=65536, max_reading_bytes=256,
                 ledger=None, files=None):
        self.path = path
        self.max_readings = max_readings
        self.max_bytes = max_bytes
        self.max_reading_bytes = max_reading_bytes
        self._ledger = _device_ledger if ledger is None else ledger
        self._files = os if files is None else files
        self._open = open if files is None else files.open  # the one the os module lacks
        self._mv = memoryview(bytearray(_CHUNK))
        self._closed = False
        self._dirty = True  # the in-memory figures are rebuilt from disk before use
        self._floor = 0
        self.dropped = 0  # readings dropped by the overflow policy since the journal was created
        self.next_seq = 1
        self._head = 0  # where the scan for the oldest live reading starts
        self.depth = 0  # readings waiting for an acknowledgement
        self._live_bytes = 0  # bytes of the live readings' records
        self.size = 0  # bytes of the journal on flash (a rewrite briefly needs as much again)
        self._recover()

    # -- public API ---------------------------------------------------------

    def append(self, reading):
        """Store a reading (a dict without "seq"); returns the seq it was given."""
        self._ready("append")
        seq = self.next_seq
        if seq > _MAX_SEQ:
            raise LimitExceeded("u32 seq %d" % seq, _MAX_SEQ)
        if type(reading) is not dict or "seq" in reading:
            raise ValueError("reading: a dict without seq")
        _check_json(reading, "reading")
        text = json.dumps(reading)
        # the seq first: '{"seq": 1, "t": 20}', or '{"seq": 1}' for an empty reading
        payload = ('{"seq": %d%s%s' % (seq, ", " if len(text) > 2 else "", text[1:])).encode()
        if len(payload) > self.max_reading_bytes:
            raise LimitExceeded("reading of %d bytes (queue.max_reading_bytes)" % len(payload),
                                self.max_reading_bytes)
        # the bounds first: the oldest readings beyond max_readings are dropped (counted),
        # and when the journal would outgrow max_bytes it is rewritten without dead records
        # (and without the oldest readings too, if the live ones alone are too many bytes)
        try:
            record = _HEADER + len(payload)
            over = self.depth + 1 - self.max_readings
            rewrite = self.size + (_MARK_SIZE if over > 0 else 0) + record > self.max_bytes
            removed = 0
            if over > 0 or rewrite:
                need = _MARK_SIZE + self._live_bytes + record - self.max_bytes if rewrite else 0
                removed = self._advance(self._floor, over, need)
                self.dropped += removed
            if rewrite:
                self._compact(self._head, self.size, seq, payload)
            else:
                if not self.depth:
                    self._head = self.size
                with _Opened(self, JOURNAL, "ab") as f:
                    if removed:
                        self._write_mark(f, _DROP)
                    self._write(f, _READING, seq, payload)
                self.size += record + (_MARK_SIZE if removed else 0)
            self.depth += 1
            self._live_bytes += record
        except BaseException:
            self._dirty = True
            raise
        self.next_seq = seq + 1
        return seq

    def peek(self, n, raw=False):
        """The oldest n readings (fewer if the queue holds fewer) as (seq, dict)
        pairs, or (seq, JSON bytes) pairs with raw=True. Nothing is removed."""
        self._ready("peek")
        out: list = []
        want = min(n, self.depth)
        if want <= 0:
            return out
        with _Opened(self, JOURNAL, "rb") as f:
            offset = self._head
            while len(out) < want:
                kind, length, seq = self._header(f, offset)
                if kind == _READING:
                    body = f.read(length)
                    if len(body) != length:
                        raise OSError(_EIO)
                    out.append((seq, body if raw else json.loads(body)))
                offset += _HEADER + length
        return out

    def ack(self, upto_seq):
        """Remove every reading with seq <= upto_seq (the broker has them); returns
        how many were removed."""
        self._ready("ack")
        if upto_seq >= self.next_seq:
            raise StateError("store", "next seq is %d" % self.next_seq, "ack seq %d" % upto_seq)
        if upto_seq <= self._floor:
            return 0
        try:
            removed = self._advance(upto_seq, 0, 0)
            self._floor = upto_seq
            if 2 * self._live_bytes <= self.size:
                self._compact(self._head, self.size)  # at least half of it is dead: rewrite
            else:
                with _Opened(self, JOURNAL, "ab") as f:
                    self._write_mark(f, _ACK)
                self.size += _MARK_SIZE
        except BaseException:
            self._dirty = True
            raise
        return removed

    def close(self):
        """No file is held between calls; after close every call is refused."""
        self._closed = True

    def __len__(self):
        return self.depth

    # -- internals ----------------------------------------------------------

    def _ready(self, action):
        if self._closed:
            raise StateError("store", "closed", action)
        if self._dirty:
            self._recover()

    def _advance(self, upto_seq, min_count, min_bytes):
        """From the head, let go of readings while seq <= upto_seq, fewer than min_count
        went or fewer than min_bytes were freed: the floor, head, depth and live bytes
        follow. Returns how many went."""
        offset = self._head
        removed = freed = last = 0
        with _Opened(self, JOURNAL, "rb") as f:
            while offset < self.size:
                kind, length, seq = self._header(f, offset)
                size = _HEADER + length
                if kind == _READING:
                    if seq > upto_seq and removed >= min_count and freed >= min_bytes:
                        break
                    removed += 1
                    freed += size
                    last = seq
                offset += size
        if removed:
            self._floor = last
            self._head = offset
            self.depth -= removed
            self._live_bytes -= freed
        return removed

    def _header(self, f, offset):
        mv = self._mv
        f.seek(offset)
        if f.readinto(mv[:_HEADER]) != _HEADER:
            raise OSError(_EIO)
        _, kind, length, seq = struct.unpack_from(_HEAD_FORMAT, mv, 0)
        return kind, length, seq

    def _write(self, f, kind, seq, body):
        mv = self._mv
        struct.pack_into(_HEAD_FORMAT, mv, 0, _MAGIC, kind, len(body), seq)
        crc = binascii.crc32(body, binascii.crc32(mv[:8])) & 0xFFFFFFFF
        struct.pack_into("<I", mv, 8, crc)
        f.write(mv[:_HEADER])
        f.write(body)

    def _write_mark(self, f, kind):
        struct.pack_into("<I", self._mv, _HEADER, self.dropped)
        self._write(f, kind, self._floor, self._mv[_HEADER:_MARK_SIZE])

    def _compact(self, start, end, seq=0, payload=None):
        """Rewrite the journal as an ACK, the live readings found in [start, end)
        and the new reading (seq, payload) if given, through a temporary file and
        a rename."""
        mv = self._mv
        size = _MARK_SIZE
        with _Opened(self, TEMP, "wb") as out:
            self._write_mark(out, _ACK)
            if start < end:
                with _Opened(self, JOURNAL, "rb") as src:
                    offset = start
                    while offset < end:
                        kind, length, old_seq = self._header(src, offset)
                        offset += _HEADER + length
                        if kind != _READING or old_seq <= self._floor:
                            continue
                        out.write(mv[:_HEADER])
                        size += _HEADER + length
                        while length:
                            n = min(length, _CHUNK)
                            if src.readinto(mv[:n]) != n:
                                raise OSError(_EIO)
                            out.write(mv[:n])
                            length -= n
            if payload is not None:
                self._write(out, _READING, seq, payload)
                size += _HEADER + len(payload)
        files = self._files
        temp = self.path + "/" + TEMP
        journal = self.path + "/" + JOURNAL
        try:
            files.rename(temp, journal)
        except OSError:
            # FAT will not rename over a file; _recover() finishes the job if the
            # power fails in between
            files.remove(journal)
            files.rename(temp, journal)
        self.size = size
        self._head = _MARK_SIZE

    def _recover(self):
        """Rebuild the figures from disk; repair a torn tail or a missing journal."""
        self._dirty = True
        files = self._files
        try:
            names = files.listdir(self.path)
        except OSError:
            files.mkdir(self.path)
            names = []
        have_journal = JOURNAL in names
        if TEMP in names:
            if have_journal:
                files.remove(self.path + "/" + TEMP)  # a rewrite that never finished
            else:
                files.rename(self.path + "/" + TEMP, self.path + "/" + JOURNAL)
                have_journal = True
        end = last = 0  # end of the valid records; the last reading's seq
        whole = False  # whether the file ends there
        self._floor = self.dropped = 0
        if have_journal:  # check every record; floor and dropped come from the marks
            mv = self._mv
            pending = None  # a DROP waiting for its READING: (offset, floor, dropped)
            with _Opened(self, JOURNAL, "rb") as f:
                while True:
                    got = f.readinto(mv[:_HEADER])
                    if not got and pending is None:
                        whole = True
                        break
                    if got != _HEADER:
                        break
                    magic, kind, length, seq = struct.unpack_from(_HEAD_FORMAT, mv, 0)
                    crc = struct.unpack_from("<I", mv, 8)[0]
                    if kind == _READING:
                        valid = length and seq > last
                    else:
                        valid = (kind == _ACK or kind == _DROP) and length == 4 and pending is None
                    if magic != _MAGIC or not valid:
                        break
                    check = binascii.crc32(mv[:8])  # the header is still in the buffer
                    body = length
                    while body:  # the body, in chunks after it
                        n = min(body, _CHUNK)
                        if f.readinto(mv[:n]) != n:
                            break
                        check = binascii.crc32(mv[:n], check)
                        body -= n
                    if body or check & 0xFFFFFFFF != crc:
                        break
                    if kind == _READING:
                        last = seq
                        mark = pending  # a DROP counts once its READING is whole
                        pending = None
                    else:
                        mark = (end, seq, struct.unpack_from("<I", mv, 0)[0])
                        if kind == _DROP:
                            pending = mark
                            mark = None
                    if mark is not None:
                        self._floor = max(self._floor, mark[1])
                        self.dropped = max(self.dropped, mark[2])
                    end += _HEADER + length
            if pending is not None:
                end = pending[0]
        self.next_seq = max(self._floor, last) + 1
        self.size = self._head = end
        self.depth = self._live_bytes = 0
        if end:  # count the live readings
            with _Opened(self, JOURNAL, "rb") as f:
                offset = 0
                while offset < end:
                    kind, length, seq = self._header(f, offset)
                    if kind == _READING and seq > self._floor:
                        if not self.depth:
                            self._head = offset
                        self.depth += 1
                        self._live_bytes += _HEADER + length
                    offset += _HEADER + length
        if not whole:
            self._compact(self._head, end)
        self._dirty = False
