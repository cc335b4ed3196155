"""What a soak of the simulated board leaves behind: one CSV row per upload window, the
leak verdict from the floor of used memory (a slope, a one-time step, or too late in
the run to tell), and a PNG of memory, the largest free block and the ledger over cycles."""

import csv

COLUMNS = ("cycle", "mem_used", "mem_peak", "mem_largest_free", "ledger", "queue_depth", "modem_on_ms",
           "fault", "point", "outcome", "delivered", "error")
MIN_WINDOWS = 8  # fewer leave the stretches too short for a floor worth comparing


class CsvLog:
    """The CSV, one row per window, written as the windows come (a run that stops
    half-way keeps what it did)."""

    def __init__(self, path):
        self._file = open(path, "w", newline="")
        self._writer = csv.DictWriter(self._file, COLUMNS)
        self._writer.writeheader()

    def row(self, record):
        self._writer.writerow(dict((key, record[key]) for key in COLUMNS))
        self._file.flush()

    def close(self):
        self._file.close()


def growth(used, clean=None):
    """Retained memory growth after warm-up, from the floor (minimum) of used memory
    after gc; the first quarter of the windows is warm-up. Growth is the floor of the
    second half minus the floor of the second quarter; per cycle, it is spread over the
    windows between their starts (where a steady leak puts each floor), and 0 when the
    floor did not rise. The later stretch is the longer one because the lowest state
    recurs only now and then. Only clean windows count where a stretch has some
    (`clean[i]`: ok, no fault): a failed window ends holding less, or more, than one that
    went through, while what a fault path keeps for good stays in the clean windows
    after it. None below MIN_WINDOWS.
    `kind` tells a slope from a step, by `rise_late`, the floor of the last quarter
    minus the floor of the third: "slope" when the floor rose and still rises in the
    second half; "step" when it rose once and stayed flat for the second half
    (`step_window`: the first window at the new floor); "late rise" when only the
    last quarter rose, too late in the run to tell; else "flat"."""
    count = len(used)
    if count < MIN_WINDOWS:
        return None
    clean = clean or [True] * count
    quarter = count // 4
    half = count // 2
    late_quarter = (half + count) // 2
    early = _floor(used, clean, quarter, half)
    late = _floor(used, clean, half, count)
    rise_late = _floor(used, clean, late_quarter, count) - _floor(used, clean, half, late_quarter)
    rise = late - early
    step_window = None
    if rise > ONE_TIME_BYTES and (rise_late > ONE_TIME_BYTES or 2 * rise_late >= rise):
        kind = "slope"
    elif rise > ONE_TIME_BYTES:
        kind = "step"
        lower = [i for i in range(quarter, count) if clean[i] and used[i] < late - ONE_TIME_BYTES]
        step_window = lower[-1] + 2 if lower else quarter + 1
    elif rise_late > ONE_TIME_BYTES:
        kind = "late rise"
    else:
        kind = "flat"
    return {"warmup_windows": quarter, "floor_early": early, "floor_late": late,
            "bytes": rise, "per_cycle": round(max(0, rise) / (half - quarter), 2),
            "windows": [quarter + 1, half, half + 1, count], "rise_late": rise_late,
            "late_windows": [late_quarter + 1, count], "kind": kind, "step_window": step_window}


def _floor(used, clean, start, end):
    chosen = [used[i] for i in range(start, end) if clean[i]]
    return min(chosen or used[start:end])


ONE_TIME_BYTES = 256  # a rare fault path that first runs late keeps a few blocks for good
# (an interned name, a cached object); a rise under it is noise, over it a step or a slope


def leaking(figures):
    """True when the floor rose and still rises (a slope, not a one-time step); judged
    only where used memory is exact (MicroPython)."""
    rise = figures["growth"]
    return figures["runtime"] == "micropython" and rise is not None and rise["kind"] == "slope"


def judgement(figures):
    """"no leak", "LEAK" (memory, links or ledger entries), "READINGS LOST" or "NOT JUDGED"
    (too few windows, or a rise too late in the run to tell a step from a slope)."""
    if leaking(figures) or figures["modem_links_open_after_power_off"] or figures["ledger_leaks"]:
        return "LEAK"
    if figures["readings_lost"]:
        return "READINGS LOST"
    rise = figures["growth"]
    if rise is None or (rise["kind"] == "late rise" and figures["runtime"] == "micropython"):
        return "NOT JUDGED"
    return "no leak"


def verdict(figures):
    """The leak verdict, one line: memory growth, readings lost, leaked links and entries."""
    rise = figures["growth"]
    if rise is None:
        memory = "too few windows to judge memory (at least %d)" % MIN_WINDOWS
    else:
        floors = "floor of clean windows %d bytes in windows %d-%d, %d bytes in windows %d-%d" % (
            rise["floor_early"], rise["windows"][0], rise["windows"][1], rise["floor_late"],
            rise["windows"][2], rise["windows"][3])
        if rise["kind"] == "step":
            memory = "a one-time step of %s bytes at window %d, flat through window %d (%s)" % (
                _signed(rise["bytes"]), rise["step_window"], rise["windows"][3], floors)
        elif rise["kind"] == "late rise":
            memory = "the floor rose %s bytes in windows %d-%d, too late in the run to tell a one-time " \
                     "step from a slope (%s)" % (_signed(rise["rise_late"]), rise["late_windows"][0],
                                                 rise["late_windows"][1], floors)
        else:
            memory = "retained growth %s bytes per cycle after warm-up (%s)" % (
                _signed(rise["per_cycle"]), floors)
            if rise["kind"] == "slope":
                memory += ", still rising %s bytes in windows %d-%d" % (
                    _signed(rise["rise_late"]), rise["late_windows"][0], rise["late_windows"][1])
        if figures["runtime"] != "micropython":
            memory += ", CPython's traced allocations: not judged"
    return "leak verdict: %s: %s; readings lost %d; links leaked %d; ledger entries leaked %d" % (
        judgement(figures), memory, figures["readings_lost"],
        figures["modem_links_open_after_power_off"], figures["ledger_leaks"])


def headline(figures):
    """The verdict in a few words, for the plot's title."""
    rise = figures["growth"]
    if rise is None or rise["kind"] == "late rise":
        memory = "memory not judged"
    elif rise["kind"] == "step":
        memory = "a one-time step of %s bytes at window %d" % (_signed(rise["bytes"]), rise["step_window"])
    else:
        memory = "%s bytes/cycle after warm-up" % _signed(rise["per_cycle"])
    return "%s: %s, %d readings lost, %d links and %d ledger entries leaked" % (
        judgement(figures), memory, figures["readings_lost"],
        figures["modem_links_open_after_power_off"], figures["ledger_leaks"])


def _signed(value):
    return "%+g" % value if value else "0"


def plot(path, records, title, floor=None):
    """A PNG: used memory after gc above (with `floor`, the floor after warm-up, as a
    line), the largest free block after gc (fragmentation) below it, ledger size and
    queue depth at the bottom, windows with an injected fault marked; Agg backend, no
    display needed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cycles = [record["cycle"] for record in records]
    figure = Figure(figsize=(10, 8), layout="constrained")
    FigureCanvasAgg(figure)
    memory, largest, book = figure.subplots(3, 1, sharex=True, height_ratios=(2, 1, 1))
    memory.plot(cycles, [record["mem_used"] / 1024 for record in records], linewidth=0.6,
                color="tab:blue", label="used after gc, end of window")
    faulted = [record for record in records if record["fault"]]
    memory.scatter([record["cycle"] for record in faulted],
                   [record["mem_used"] / 1024 for record in faulted], s=5, marker="x",
                   color="tab:red", linewidths=0.5, label="window with an injected fault")
    if floor is not None:
        memory.axhline(floor / 1024, color="black", linewidth=0.8, linestyle="--",
                       label="floor of clean windows after warm-up: %d bytes" % floor)
    # the first windows (imports, first use) would squash the scale of all the others
    settled = [record["mem_used"] / 1024 for record in records[max(3, len(records) // 100):]]
    if settled:
        margin = max(1.0, (max(settled) - min(settled)) * 0.15)
        memory.set_ylim(min(settled) - margin, max(settled) + margin)
    memory.axvspan(0, len(records) // 4 + 0.5, color="0.92", zorder=0, label="warm-up: not judged")
    memory.set_ylabel("heap used (KiB)")
    memory.legend(loc="lower right", fontsize="small")
    memory.grid(alpha=0.3)
    largest.plot(cycles, [record["mem_largest_free"] / 1024 for record in records], linewidth=0.6,
                 color="tab:purple", label="largest free block after gc, end of window")
    largest.set_ylim(bottom=0)
    largest.set_ylabel("largest free (KiB)")
    largest.legend(loc="lower right", fontsize="small")
    largest.grid(alpha=0.3)
    book.step(cycles, [record["queue_depth"] for record in records], where="post",
              color="tab:gray", linewidth=0.6, label="readings queued on flash")
    book.step(cycles, [record["ledger"] for record in records], where="post", color="tab:green",
              linewidth=1.5, label="ledger entries after the window")
    book.set_ylim(bottom=-0.5)  # a ledger flat at 0 stays in sight
    book.set_xlabel("upload window")
    book.set_ylabel("count")
    book.legend(loc="upper right", fontsize="small")
    book.grid(alpha=0.3)
    figure.suptitle(title, fontsize="medium")
    figure.savefig(path, dpi=80)
