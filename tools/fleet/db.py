"""The fleet database: SQLite (a file path, nothing to install) or PostgreSQL (a
postgresql:// URL, through psycopg). One schema, the same SQL for both save the few
words that differ; every write of the collector is one transaction.

Tables:
  readings   one row per (device, seq): the reading as canonical JSON, when it first
             came, and how many copies came (QoS 1 delivers at least once)
  conflicts  a (device, seq) that came again with other content: both contents
  health     one row per health message (a redelivered one is the same row)
  status     one row per status message (command replies), likewise
  rejects    what could not be stored, with the reason and the payload
"""

import hashlib
import json
import os
import sqlite3

from .messages import dated_later

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    device TEXT NOT NULL, seq BIGINT NOT NULL, body TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL, copies INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (device, seq));
CREATE TABLE IF NOT EXISTS conflicts (
    device TEXT NOT NULL, seq BIGINT NOT NULL, stored TEXT NOT NULL, received TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (device, seq, received));
CREATE TABLE IF NOT EXISTS health (
    device TEXT NOT NULL, digest TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL,
    window_number INTEGER NOT NULL, mem_used BIGINT NOT NULL, mem_peak BIGINT NOT NULL,
    mem_largest_free BIGINT, mem_status TEXT NOT NULL, modem_on_ms BIGINT,
    modem_total_on_ms BIGINT, failures INTEGER, queue_depth INTEGER, dropped BIGINT,
    body TEXT NOT NULL, PRIMARY KEY (device, digest));
CREATE TABLE IF NOT EXISTS status (
    device TEXT NOT NULL, digest TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (device, digest));
CREATE TABLE IF NOT EXISTS rejects (
    id {serial}, received_at DOUBLE PRECISION NOT NULL, topic TEXT NOT NULL,
    reason TEXT NOT NULL, size BIGINT NOT NULL, payload {blob});
"""

HEALTH_COLUMNS = ("window_number", "mem_used", "mem_peak", "mem_largest_free", "mem_status", "modem_on_ms",
                  "modem_total_on_ms", "failures", "queue_depth", "dropped")


class DatabaseError(Exception):
    """The database cannot be opened or written: its URL or path and the cause."""


def digest(payload):
    return hashlib.sha1(payload).hexdigest()


def open_db(target, create=True):
    """A Database for `target`: a postgresql:// URL, or a SQLite file path (which,
    unless `create`, must exist already)."""
    if target.startswith(("postgresql://", "postgres://")):
        return Postgres(target)
    if not create and not os.path.exists(target):
        raise DatabaseError("%s: no such file" % target)
    return Sqlite(target)


class Database:
    PLACEHOLDER = "?"
    SERIAL = BLOB = ""
    ERRORS: tuple = ()

    def __init__(self, target):
        self.target = target
        self._conn = self._connect()
        try:
            with self.transaction():
                for statement in SCHEMA.format(serial=self.SERIAL, blob=self.BLOB).split(";"):
                    if statement.strip():
                        self._execute(statement)
        except BaseException:
            self.close()
            raise

    def _connect(self):
        raise NotImplementedError

    def _sql(self, text):
        return text if self.PLACEHOLDER == "?" else text.replace("?", self.PLACEHOLDER)

    def _execute(self, text, params=()):
        try:
            cursor = self._conn.cursor()
            cursor.execute(self._sql(text), params)
            return cursor
        except self.ERRORS as error:
            raise DatabaseError("%s: %s" % (self.where(), error)) from None

    def where(self):
        return self.target

    def query(self, text, params=()):
        return self._execute(text, params).fetchall()

    def transaction(self):
        return _Transaction(self)

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # the collector's writes (inside a transaction)

    def store_readings(self, device, readings, received_at):
        """Store (seq, canonical body) pairs of one device: new ones inserted, a copy of
        a stored one counted (one that only adds the ts the stored one lacked replaces
        it: messages.dated_later), a differing one recorded as a conflict. Returns
        (new, duplicates, conflicts)."""
        inserted = self._insert_new(device, readings, received_at)
        again = [(seq, body) for seq, body in readings if seq not in inserted]
        duplicates = conflicts = 0
        if again:
            stored = dict(self.query("SELECT seq, body FROM readings WHERE device = ? AND seq IN (%s)" % ", ".join(
                "?" * len(again)), [device] + [seq for seq, _ in again]))
            for seq, body in again:
                if stored[seq] == body or dated_later(json.loads(stored[seq]), json.loads(body)):
                    duplicates += 1
                    self._execute("UPDATE readings SET copies = copies + 1, body = ? WHERE device = ? AND seq = ?",
                                  (body, device, seq))
                else:
                    conflicts += 1
                    self._execute("INSERT INTO conflicts (device, seq, stored, received, received_at) "
                                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                  (device, seq, stored[seq], body, received_at))
        return len(inserted), duplicates, conflicts

    def _insert_new(self, device, readings, received_at):
        """The seqs of `readings` inserted now (the others were stored already)."""
        raise NotImplementedError

    def store_health(self, device, payload, fields, received_at):
        columns = ", ".join(HEALTH_COLUMNS)
        self._execute("INSERT INTO health (device, digest, received_at, %s, body) VALUES (?, ?, ?, %s, ?) "
                      "ON CONFLICT DO NOTHING" % (columns, ", ".join("?" * len(HEALTH_COLUMNS))),
                      [device, digest(payload), received_at] + [fields.get(name) for name in HEALTH_COLUMNS]
                      + [payload.decode()])

    def store_status(self, device, payload, received_at):
        self._execute("INSERT INTO status (device, digest, received_at, body) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT DO NOTHING", (device, digest(payload), received_at, payload.decode()))

    def store_reject(self, topic, reason, size, payload, received_at):
        self._execute("INSERT INTO rejects (received_at, topic, reason, size, payload) VALUES (?, ?, ?, ?, ?)",
                      (received_at, topic, reason, size, payload))


class _Transaction:
    def __init__(self, database):
        self._db = database

    def __enter__(self):
        return self._db

    def __exit__(self, kind, error, trace):
        conn = self._db._conn
        try:
            if kind is None:
                conn.commit()
            else:
                conn.rollback()
        except self._db.ERRORS as problem:
            raise DatabaseError("%s: %s" % (self._db.where(), problem)) from None
        return False


class Sqlite(Database):
    SERIAL = "INTEGER PRIMARY KEY"
    BLOB = "BLOB"
    ERRORS = (sqlite3.Error,)
    BUSY_TIMEOUT_S = 30  # another collector's transaction on the same file

    def _connect(self):
        try:
            conn = sqlite3.connect(self.target, timeout=self.BUSY_TIMEOUT_S, isolation_level="IMMEDIATE")
            # IMMEDIATE: a transaction takes the write lock first (two collectors on one
            # file wait for each other instead of failing); WAL with synchronous NORMAL: a
            # commit survives the process killed at any point (an OS crash may lose the last)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as error:
            raise DatabaseError("%s: %s" % (self.target, error)) from None
        return conn

    def _insert_new(self, device, readings, received_at):
        inserted = set()
        for seq, body in readings:
            cursor = self._execute("INSERT INTO readings (device, seq, body, received_at) VALUES (?, ?, ?, ?) "
                                   "ON CONFLICT DO NOTHING", (device, seq, body, received_at))
            if cursor.rowcount:
                inserted.add(seq)
        return inserted


class Postgres(Database):
    PLACEHOLDER = "%s"
    SERIAL = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    BLOB = "BYTEA"

    def _connect(self):
        try:
            import psycopg
        except ImportError:
            raise DatabaseError("%s: psycopg is not installed (pip install -r requirements-dev.txt)"
                                % self.where()) from None
        self.ERRORS = (psycopg.Error,)
        try:
            return psycopg.connect(self.target, connect_timeout=10)
        except psycopg.Error as error:
            raise DatabaseError("%s: %s" % (self.where(), error)) from None

    def where(self):
        import urllib.parse

        parts = urllib.parse.urlsplit(self.target)
        host = parts.hostname or ""
        if parts.port:
            host += ":%d" % parts.port
        return "postgresql://%s%s" % (host, parts.path)  # never the password

    def _insert_new(self, device, readings, received_at):
        # one round trip for the whole batch: the rows inserted come back
        rows = self.query("INSERT INTO readings (device, seq, body, received_at) "
                          "SELECT ?, s, b, ? FROM unnest(?::bigint[], ?::text[]) AS t(s, b) "
                          "ON CONFLICT DO NOTHING RETURNING seq",
                          (device, received_at, [seq for seq, _ in readings], [body for _, body in readings]))
        return {row[0] for row in rows}
