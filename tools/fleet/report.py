"""`python -m tools.fleet report`: per device, from the database: readings stored, seq
gaps, duplicates absorbed, conflicts, last seen, time coverage, memory (floor, the
board's own watchdog verdict and the same watchdog replayed on the series it sent,
the largest free block), modem on-time and the energy it implies, failures.

A health message of window n carries the watchdog's figures after window n-1 (the
first window after a boot carries none yet: it is left out of the series); a window
number that goes down is a reboot, which starts the watchdog afresh.
Exit status 1 when a device has a gap older than --grace, a leak verdict or a conflict.
"""

import json
import time

from cellmqtt import config, memwatch

from . import heap

# worst first: the verdict of a device is the worst one its series reached
_SEVERITY = (memwatch.LEAK, memwatch.LOW_MEMORY, memwatch.OK, memwatch.WARMUP)
_MS_PER_HOUR = 3600 * 1000
_UNKNOWN_FREE = 1 << 30

_GAPS = """SELECT device, seq, next_seq, next_at FROM (
    SELECT device, seq, LEAD(seq) OVER w AS next_seq, LEAD(received_at) OVER w AS next_at
    FROM readings WINDOW w AS (PARTITION BY device ORDER BY seq)) AS t
WHERE next_seq > seq + 1 ORDER BY device, seq"""


def _worst(statuses):
    seen = set(statuses)
    for status in _SEVERITY:
        if status in seen:
            return status
    return None


class Device:
    def __init__(self, name):
        self.name = name
        self.readings = self.duplicates = self.conflicts = 0
        self.first_seq = self.last_seq = None
        self.gaps = []  # {"from", "to", "missing", "age_s"}
        self.first_seen = self.last_seen = None
        self.health = []  # rows in arrival order
        self.status_messages = 0

    def seen(self, *moments):
        for moment in moments:
            if moment is None:
                continue
            self.first_seen = moment if self.first_seen is None else min(self.first_seen, moment)
            self.last_seen = moment if self.last_seen is None else max(self.last_seen, moment)


def _load(db, now):
    devices = {}

    def device(name):
        if name not in devices:
            devices[name] = Device(name)
        return devices[name]

    for name, count, low, high, extra, first, last in db.query(
            "SELECT device, COUNT(*), MIN(seq), MAX(seq), SUM(copies - 1), MIN(received_at), MAX(received_at) "
            "FROM readings GROUP BY device"):
        found = device(name)
        found.readings, found.first_seq, found.last_seq, found.duplicates = count, low, high, int(extra)
        found.seen(first, last)
    for name, seq, next_seq, next_at in db.query(_GAPS):
        device(name).gaps.append({"from": seq + 1, "to": next_seq - 1, "missing": next_seq - seq - 1,
                                  "age_s": round(now - next_at, 1)})
    for name, count in db.query("SELECT device, COUNT(*) FROM conflicts GROUP BY device"):
        device(name).conflicts = count
    for row in db.query("SELECT device, received_at, window_number, mem_used, mem_peak, mem_largest_free, "
                        "mem_status, modem_on_ms, modem_total_on_ms, failures, dropped FROM health "
                        "ORDER BY device, received_at, window_number"):
        found = device(row[0])
        found.health.append(row[1:])
        found.seen(row[1])
    for name, count, first, last in db.query(
            "SELECT device, COUNT(*), MIN(received_at), MAX(received_at) FROM status GROUP BY device"):
        found = device(name)
        found.status_messages = count
        found.seen(first, last)
    return [devices[name] for name in sorted(devices)]


def _memory(rows, settings):
    """Floor, verdicts and the series for the plot, from health rows in arrival order."""
    series = []  # (window, used, peak, largest) of samples
    boots = []  # per boot: the samples to replay
    board = []
    previous = None
    for _, window, used, peak, largest, status, *_ in rows:
        if previous is None or window <= previous:
            boots.append([])
        previous = window
        if window == 1:
            continue  # no sample yet
        board.append(status)
        series.append((window, used, peak, largest))
        # a board that sends no largest free block: nothing to judge low memory by
        boots[-1].append((used, peak, largest if largest is not None else _UNKNOWN_FREE))
    replayed = [verdict for boot in boots for verdict in heap.replay(boot, settings)]
    largest = [item[3] for item in series if item[3] is not None]
    last = replayed[-1] if replayed else None
    return {
        "samples": len(series),
        "floor": min(item[1] for item in series) if series else None,
        "largest_free_min": min(largest) if largest else None,
        "board_verdict": _worst(board),
        "replay_verdict": _worst(verdict["status"] for verdict in replayed),
        "growth": last["growth"] if last else None,
        "drift": last["drift"] if last else None,
        "series": series,
    }


def _energy(rows, span_s, on_ma, sleep_ma):
    on_times = [row[6] for row in rows if row[1] > 1 and row[6] is not None]
    total_ms = 0
    previous = best = None
    for row in rows:
        window, total = row[1], row[7]
        if previous is not None and window <= previous:
            total_ms += best or 0
            best = None
        previous = window
        if total is not None:
            best = total if best is None else max(best, total)
    total_ms += best or 0
    off_ms = max(0, span_s * 1000 - total_ms)
    return {"on_ms_per_window": round(sum(on_times) / len(on_times)) if on_times else None,
            "on_s_total": round(total_ms / 1000, 1),
            "mah": round((total_ms * on_ma + off_ms * sleep_ma) / _MS_PER_HOUR, 3)}


def analyse(db, grace_s=3600, settings=None, on_ma=500.0, sleep_ma=0.02, now=None):
    """The report as a dict: {"generated_at", "settings", "devices": [...], "fleet", "rejects"}."""
    now = time.time() if now is None else now
    devices = []
    for found in _load(db, now):
        span_s = (found.last_seen - found.first_seen) if found.first_seen is not None else 0
        memory = _memory(found.health, settings)
        old_gaps = [gap for gap in found.gaps if gap["age_s"] > grace_s]
        flags = []
        if old_gaps:
            flags.append("gap older than %g s: %s" % (grace_s, _ranges(old_gaps)))
        if memwatch.LEAK in (memory["board_verdict"], memory["replay_verdict"]):
            flags.append("leak (board %s, replay %s)" % (memory["board_verdict"], memory["replay_verdict"]))
        if found.conflicts:
            flags.append("%d conflicting seq%s" % (found.conflicts, "" if found.conflicts == 1 else "s"))
        health = found.health
        devices.append({
            "device": found.name, "readings": found.readings, "first_seq": found.first_seq,
            "last_seq": found.last_seq, "missing": sum(gap["missing"] for gap in found.gaps),
            "gaps": found.gaps, "duplicates": found.duplicates, "conflicts": found.conflicts,
            "first_seen": found.first_seen, "last_seen": found.last_seen,
            "last_seen_age_s": round(now - found.last_seen, 1) if found.last_seen is not None else None,
            "coverage_s": round(span_s, 1), "health_messages": len(health),
            "status_messages": found.status_messages,
            "failed_windows": sum(row[8] or 0 for row in health),
            "dropped": max((row[9] or 0 for row in health), default=0),
            "memory": memory, "energy": _energy(health, span_s, on_ma, sleep_ma), "flags": flags})
    rejects = [{"reason": reason, "count": count} for reason, count in db.query(
        "SELECT reason, COUNT(*) FROM rejects GROUP BY reason ORDER BY COUNT(*) DESC, reason")]
    fleet = {"devices": len(devices), "readings": sum(d["readings"] for d in devices),
             "missing": sum(d["missing"] for d in devices), "duplicates": sum(d["duplicates"] for d in devices),
             "conflicts": sum(d["conflicts"] for d in devices), "rejects": sum(r["count"] for r in rejects),
             "flagged": [d["device"] for d in devices if d["flags"]],
             "leaks": [d["device"] for d in devices if any(f.startswith("leak") for f in d["flags"])]}
    return {"generated_at": now, "database": db.where(), "grace_s": grace_s,
            "memwatch": config.check_memwatch(settings or {}), "currents_ma": {"on": on_ma, "sleep": sleep_ma},
            "fleet": fleet, "devices": devices, "rejects": rejects}


def _ranges(gaps):
    return ", ".join("%d" % gap["from"] if gap["from"] == gap["to"] else "%d-%d" % (gap["from"], gap["to"])
                     for gap in gaps)


def _age(seconds):
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return "%.1f %s" % (seconds / size, unit)
    return "%.0f s" % seconds


def _number(value, unit=""):
    return "-" if value is None else "{:,}{}".format(value, unit)


COLUMNS = ("device", "readings", "missing", "dup", "confl", "last seen", "covers", "mem floor", "watchdog",
           "largest free", "on/window", "mAh", "failed")


def table(report):
    """The terminal table, the gaps and flags under it, and a fleet line."""
    rows = [COLUMNS]
    for d in report["devices"]:
        memory, energy = d["memory"], d["energy"]
        verdict = "%s/%s" % (memory["board_verdict"] or "-", memory["replay_verdict"] or "-")
        rows.append((d["device"], _number(d["readings"]), _number(d["missing"]), _number(d["duplicates"]),
                     _number(d["conflicts"]), _age(d["last_seen_age_s"]) + " ago", _age(d["coverage_s"]),
                     _number(memory["floor"], " B"), verdict, _number(memory["largest_free_min"], " B"),
                     _number(energy["on_ms_per_window"], " ms"), "%.2f" % energy["mah"],
                     _number(d["failed_windows"])))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(str(cell).rjust(width) if i else str(cell).ljust(width)
                       for i, (cell, width) in enumerate(zip(row, widths))) for row in rows]
    lines.append("watchdog: the board's verdict / the same watchdog replayed on the figures it sent "
                 "(window %(window)d, warmup %(warmup)d, leak_bytes %(leak_bytes)d)" % report["memwatch"])
    for d in report["devices"]:
        if d["gaps"]:
            lines.append("%s: missing seqs %s" % (d["device"], _ranges(d["gaps"])))
        for flag in d["flags"]:
            lines.append("%s: FLAGGED %s" % (d["device"], flag))
    for reject in report["rejects"]:
        lines.append("rejected %d: %s" % (reject["count"], reject["reason"]))
    fleet = report["fleet"]
    lines.append("fleet: %(devices)d devices, %(readings)d readings, %(missing)d missing, %(duplicates)d "
                 "duplicates absorbed, %(conflicts)d conflicts, %(rejects)d rejects, " % fleet
                 + "%d flagged" % len(fleet["flagged"]))
    return "\n".join(lines)


def as_json(report):
    return json.dumps(report, indent=1)
