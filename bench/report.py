"""Figures, their targets, and the two outputs: results.json (one object per figure)
and RESULTS.md (one row per measure, the clients side by side)."""

import json

OURS = "cellmqtt"
OURS_MODEM = "cellmqtt-modem"
SIMPLE = "umqtt.simple"
ROBUST = "umqtt.robust"
ASYNC = "mqtt_async"
COLUMNS = (OURS, OURS_MODEM, SIMPLE, ROBUST, ASYNC)
OUR_COLUMNS = (OURS, OURS_MODEM)
HEADINGS = {OURS: "cellmqtt (socket)", OURS_MODEM: "cellmqtt (SIM7600 link)", SIMPLE: "umqtt.simple",
            ROBUST: "umqtt.robust", ASYNC: "mqtt_async"}


class Figure:
    def __init__(self, name, client, value, unit, target=None, passed=None, note=None):
        self.name = name
        self.client = client
        self.value = value
        self.unit = unit
        self.target = target
        self.passed = passed
        self.note = note

    def as_dict(self):
        found = {"name": self.name, "client": self.client, "value": self.value, "unit": self.unit}
        if self.target is not None:
            found["target"] = self.target
            found["passed"] = self.passed
        if self.note:
            found["note"] = self.note
        return found


class Results:
    def __init__(self):
        self.figures = []
        self.references = {}  # figure name -> (label, value) of its peer or minimum
        self.order = []

    def add(self, name, client, value, unit, target=None, passed=None, note=None):
        if self.get(name, client) is not None:  # the table has one cell for it: a second would be hidden
            raise ValueError("%s: a second figure for %s" % (name, client))
        if name not in self.order:
            self.order.append(name)
        figure = Figure(name, client, value, unit, target, passed, note)
        self.figures.append(figure)
        return figure

    def reference(self, name, label, client, value, unit):
        """The figure's yardstick (protocol minimum, paho-mqtt, the manual's sequence)."""
        self.references[name] = label
        return self.add(name, client, value, unit)

    def get(self, name, client):
        for figure in self.figures:
            if figure.name == name and figure.client == client:
                return figure
        return None

    def missed(self):
        return [figure for figure in self.figures if figure.passed is False]

    def json(self):
        return json.dumps([figure.as_dict() for figure in self.figures], indent=1) + "\n"

    def markdown(self, preamble=""):
        """One row per figure name; the last column has our verdicts and ratios."""
        head = ["figure"] + [HEADINGS[column] for column in COLUMNS] + ["yardstick", "target", "result"]
        lines = [preamble] if preamble else []
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for name in self.order:
            row = [name]
            targets = []
            results = []
            for column in COLUMNS:
                figure = self.get(name, column)
                row.append(_cell(figure))
                if figure is not None and column in OUR_COLUMNS:
                    if figure.target is not None and figure.target not in targets:
                        targets.append(figure.target)
                    results.append(_verdict(figure))
            yardsticks = [figure for figure in self.figures if figure.name == name and figure.client not in COLUMNS]
            row.append("%s: %s" % (self.references[name], _cell(yardsticks[0])) if yardsticks else "")
            row.append("; ".join(targets))
            row.append("; ".join(result for result in results if result))
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines) + "\n"


def _verdict(figure):
    words = []
    if figure.target is not None:
        words.append("PASS" if figure.passed else "**MISS**")
    if figure.note:
        words.append("(%s)" % figure.note if words else figure.note)
    return " ".join(words)


def _cell(figure):
    if figure is None:
        return ""
    value = figure.value
    if isinstance(value, float):
        text = "%.1f" % value if abs(value) < 100 else "{:,.0f}".format(value)
    else:
        text = "{:,}".format(value)
    return "%s %s" % (text, figure.unit) if figure.unit else text
