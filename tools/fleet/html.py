"""The report as one static page (index.html, no scripts, nothing fetched): the fleet
summary, the devices' table with the flagged ones first, and a plot per device of
the heap used after gc per window (the figure a leak raises) and its floor, as inline SVG."""

import html
import os
import time

from . import report as r

WIDTH, HEIGHT, PAD, LEFT = 380, 120, 12, 64  # LEFT: room for the byte labels
MIN_SPAN = 1024  # bytes: a flat series stays flat, a leak of a few hundred bytes a window shows

_STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}.flag{color:#b00020;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #ddd;padding:6px}
figcaption{font-size:12px}svg text{font-size:10px;fill:#555}"""


def _esc(value):
    return html.escape(str(value))


def plot(series):
    """SVG of (window, used, peak, largest) samples: used after gc (solid) and its
    floor (dotted), on a scale of at least MIN_SPAN bytes."""
    if not series:
        return '<svg width="%d" height="%d"><text x="8" y="20">no health samples</text></svg>' % (WIDTH, 30)
    windows = [item[0] for item in series]
    values = [item[1] for item in series]
    low, high = min(values), max(values)
    high = max(high, low + MIN_SPAN)
    first, last = min(windows), max(windows)
    span = max(last - first, 1)

    def x(window):
        return LEFT + (WIDTH - LEFT - PAD) * (window - first) / span

    def y(value):
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - low) / (high - low)

    def line(index, style):
        points = " ".join("%.1f,%.1f" % (x(item[0]), y(item[index])) for item in series)
        return '<polyline fill="none" %s points="%s"/>' % (style, points)

    floor = min(item[1] for item in series)
    return "".join([
        '<svg width="%d" height="%d" role="img">' % (WIDTH, HEIGHT),
        line(1, 'stroke="#036" stroke-width="1.5"'),
        '<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#c60" stroke-dasharray="1 3"/>' % (
            LEFT, WIDTH - PAD, y(floor), y(floor)),
        '<text x="2" y="{}">{:,} B</text><text x="2" y="{}">{:,} B</text>'.format(PAD, high, HEIGHT - PAD, low),
        '<text x="%d" y="%d" text-anchor="end">windows %d-%d</text>' % (WIDTH - PAD, HEIGHT - 1, first, last),
        "</svg>"])


def page(report):
    fleet = report["fleet"]
    devices = sorted(report["devices"], key=lambda d: (not d["flags"], d["device"]))
    out = ["<!doctype html><html><head><meta charset=\"utf-8\"><title>Fleet report</title>",
           "<style>%s</style></head><body>" % _STYLE,
           "<h1>Fleet report</h1><p>%s, database %s. %d devices, {:,} readings, {:,} missing, {:,} duplicates "
           "absorbed, {:,} conflicts, {:,} rejects; <span class=\"%s\">%d flagged</span>.</p>".format(
               fleet["readings"], fleet["missing"], fleet["duplicates"], fleet["conflicts"], fleet["rejects"])
           % (_esc(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report["generated_at"]))),
              _esc(report["database"]), fleet["devices"], "flag" if fleet["flagged"] else "", len(fleet["flagged"])),
           "<p>Watchdog: the board's own verdict / the same watchdog (lib/cellmqtt/memwatch.py) replayed on "
           "the figures the board sent: window %(window)d, warmup %(warmup)d, leak_bytes %(leak_bytes)d, "
           "drift_bytes %(drift_bytes)d. " % report["memwatch"]
           + "Energy at %(on)g mA with the modem on, %(sleep)g mA asleep.</p>" % report["currents_ma"],
           "<table><tr>%s<th>flags</th></tr>" % "".join("<th>%s</th>" % _esc(c) for c in r.COLUMNS)]
    for d in devices:
        memory, energy = d["memory"], d["energy"]
        cells = (d["device"], r._number(d["readings"]), r._number(d["missing"]), r._number(d["duplicates"]),
                 r._number(d["conflicts"]), r._age(d["last_seen_age_s"]) + " ago", r._age(d["coverage_s"]),
                 r._number(memory["floor"], " B"),
                 "%s/%s" % (memory["board_verdict"] or "-", memory["replay_verdict"] or "-"),
                 r._number(memory["largest_free_min"], " B"), r._number(energy["on_ms_per_window"], " ms"),
                 "%.2f" % energy["mah"], r._number(d["failed_windows"]))
        out.append("<tr>%s<td class=\"flag\">%s</td></tr>" % ("".join("<td>%s</td>" % _esc(c) for c in cells),
                                                             _esc("; ".join(d["flags"]))))
    out.append("</table>")
    if report["rejects"]:
        out.append("<h2>Rejected messages</h2><table><tr><th>reason</th><th>count</th></tr>")
        out.extend("<tr><td>%s</td><td>%d</td></tr>" % (_esc(x["reason"]), x["count"]) for x in report["rejects"])
        out.append("</table>")
    out.append("<h2>Heap after gc per window</h2><p>solid: used after gc at the end of each window "
               "(from the next window's health message); dotted: its floor.</p><div class=\"plots\">")
    for d in devices:
        caption = _esc(d["device"])
        if d["flags"]:
            caption += ' <span class="flag">%s</span>' % _esc("; ".join(d["flags"]))
        out.append("<figure>%s<figcaption>%s</figcaption></figure>" % (plot(d["memory"]["series"]), caption))
    out.append("</div></body></html>\n")
    return "\n".join(out)


def write(report, folder):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "index.html")
    with open(path, "w") as out:
        out.write(page(report))
    return path
