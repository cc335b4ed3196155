"""config.json: the device's settings, validated at boot.

load(path) reads and validates the file; validate(raw) checks a dict. Both return
a new dict with every default filled in, the device id and client id decided and
the topics resolved ("{device}" replaced). A bad value raises ConfigError naming
the key as a dotted path ("broker.port") and what is allowed. Unknown keys are
errors too (a typo must not fall back to a default in silence). Credentials never
live here: they go in secrets.json.

SCHEMA maps each key to (default, rule) or (default, rule, NULLABLE); REQUIRED marks
a key with no default; a key whose default is None may be null too.

What else only boot needs lives here too, as app.main unloads this module once the
duty cycle is built: transport_factory(config) chooses the windows' transport and
loads its modules, start(path) is app.main's boot (nothing in safe mode), and
cycle_parts() makes what app.DutyCycle holds.
"""

import json
import os

from . import memwatch, port
from ._const import const
from .downlink import Inbox
from .errors import ConfigError
from .ledger import ledger as device_ledger
from .modem.at import TIMEOUTS_MS, check_timeouts
from .mqtt.topic import filter_error, matches, topic_error
from .power import PowerManager
from .sensors import BoardSensor
from .store import RECORD_OVERHEAD, Store

SECRETS_FILE = "secrets.json"  # user name, password, client key (secrets.py), apart from config.json
SAFE_MODE_FILE = "safe_mode"  # present: boot.py's REPL only, the duty cycle does not start
REQUIRED = "<required>"
NULLABLE = True
# The reference board's wiring (LilyGO T-SIM7600X), the one pin map: this module's defaults,
# power_lines()'s when given no pins, and the SIM7600 emulator's model of the board.
# ESP32 GPIO of each modem signal (docs/modem.md, Boot); None: not wired on this board.
PINS = {"pwrkey": 4, "flight": 25, "status": 34, "dtr": 32, "ri": 33, "power_en": None, "reset": None,
        "battery_adc": 35}  # the cell through a 100k/100k divider
UART_PINS = {"tx": 27, "rx": 26}  # the ESP32's side: its TX goes to the modem's RX
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
_HOST_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-."
_PATH_CHARS = _ID_CHARS + "/"
_DAY_S = const(86400)
_WEEK_S = const(7 * _DAY_S)


def _is_id(text):
    return 1 <= len(text) <= 64 and all(c in _ID_CHARS for c in text)


def _is_host(text):
    return (1 <= len(text) <= 253 and all(c in _HOST_CHARS for c in text) and ".." not in text
            and text[0] not in ".-" and text[-1] not in ".-")


def _is_apn(text):
    return len(text) <= 100 and all(c in _ID_CHARS for c in text)


def _is_address(text):
    host, _, number = text.rpartition(":")
    return _is_host(host) and number.isdigit() and 0 < int(number) < 65536


def _is_path(text):
    return 1 <= len(text) <= 64 and all(c in _PATH_CHARS for c in text) and "//" not in text


def _check_modem(raw):
    """modem.timeouts: overrides of the modem layer's table (modem/at.py), in ms;
    modem.boot_timeout_s: the power-up wait for STATUS high (or RDY) after the key press."""
    for key in raw:
        if key != "timeouts" and key != "boot_timeout_s":
            raise ConfigError("modem." + key, "unknown key; allowed here: boot_timeout_s, timeouts")
    overrides = raw.get("timeouts", {})
    if type(overrides) is not dict:
        raise ConfigError("modem.timeouts", "an object: {\"+CSQ\": 3000, \"register\": 90000, ...}")
    check_timeouts(overrides)
    boot = raw.get("boot_timeout_s", 20)  # power._READY_TIMEOUT_MS: a SIM7600 takes 12-16 s
    _check("modem.boot_timeout_s", boot, ("int", 12, 120), False)
    return {"timeouts": dict(overrides), "boot_timeout_s": boot}


def timeout_error(name, unknown):
    """The ConfigError of a bad modem.timeouts entry (modem/at.py finds it)."""
    if unknown:
        from .modem import timeouts_tls_ppp

        names = list(TIMEOUTS_MS) + list(timeouts_tls_ppp.TIMEOUTS_MS)
        allowed = "unknown; allowed: +NAME or " + ", ".join(sorted(names))
    else:
        allowed = "a number of milliseconds, 1 or more"
    return ConfigError("modem.timeouts." + name, allowed)


def check_memwatch(raw):
    """memwatch: the watchdog's settings (memwatch.DEFAULTS), each of its default's
    type; returns them all, the defaults filled in."""
    for key in raw:
        if key not in memwatch.DEFAULTS:
            raise ConfigError("memwatch." + key, "unknown key; allowed: " + ", ".join(sorted(memwatch.DEFAULTS)))
    merged = {}
    for key, default in memwatch.DEFAULTS.items():
        value = raw.get(key, default)
        if type(value) is not type(default):
            raise ConfigError("memwatch." + key, "must be %s" % type(default).__name__)
        merged[key] = value
    window = merged["window"]
    if window < 4 or window % 2:
        raise ConfigError("memwatch.window", "an even number of samples, at least 4")
    for key in ("leak_bytes", "drift_bytes"):
        if merged[key] < 1:
            raise ConfigError("memwatch." + key, "must be 1 or more")
    for key in ("warmup", "min_free", "min_block"):
        if merged[key] < 0:
            raise ConfigError("memwatch." + key, "must be 0 or more")
    return merged


def _is_topic_template(text):
    rest = text.replace("{device}", "")
    return 1 <= len(text) <= 256 and "{" not in rest and "}" not in rest and "\x00" not in text


_ID_TEXT = "letters, digits, '-', '_' or '.', 1-64 characters"
_PIN_TEXT = "a GPIO of the ESP32 (0-5, 12-19, 21-23, 25-27, 32-39; 6-11 hold the flash)"
_TOPIC_TEXT = "a topic of 1-256 characters; the only placeholder is {device}"
_DEVICE_RULE = ("text", _is_id, _ID_TEXT + " (a topic level: '+', '#', '/' and NUL are refused)")

SCHEMA = {
    # the device's name in topics and payloads; null: the chip's unique id
    "device_id": (None, _DEVICE_RULE),
    "apn": (REQUIRED, ("text", _is_apn, "the operator's APN: letters, digits, '-', '_', '.', up to 100")),
    "transport": ("at", ("choice", ("at", "ppp"),
                         "at: the modem's own TCP stack; ppp: a data call and the board's lwIP")),
    "broker": {
        "host": (REQUIRED, ("text", _is_host,
                            "a host name or IPv4 address (letters, digits, '-', '.'); the port goes in broker.port")),
        "port": (1883, ("int", 1, 65535)),
        "client_id": (None, ("text", _is_id, _ID_TEXT + "; null: the device id")),
        "keepalive_s": (60, ("int", 0, 65535)),  # 0: no keepalive [MQTT-3.1.2.10]
        # the wait for CONNACK, SUBACK and each PUBACK; the window's own bound is above it
        "timeout_s": (30, ("int", 1, 600)),
        "tls": (False, ("choice", (False, True), "true: TLS with the server verified against broker.cafile")),
        "cafile": (None, ("text", _is_path, "the CA certificate (PEM) on flash that signed the broker's")),
        # mutual TLS: the client certificate's PEM on flash; its key goes in secrets.json
        "certfile": (None, ("text", _is_path, "the client certificate (PEM) on flash, or null")),
    },
    "topics": {
        "data": ("cellmqtt/{device}/data", ("text", _is_topic_template, _TOPIC_TEXT)),
        "health": ("cellmqtt/{device}/health", ("text", _is_topic_template, _TOPIC_TEXT)),
        "command": ("cellmqtt/{device}/command", ("text", _is_topic_template, _TOPIC_TEXT)),
        "status": ("cellmqtt/{device}/status", ("text", _is_topic_template, _TOPIC_TEXT)),
    },
    "sampling": {
        "period_s": (60, ("int", 1, _DAY_S)),
    },
    "upload": {
        # a window opens when this many readings wait, or this long after the last one
        "every_n_readings": (10, ("int", 1, 100000), NULLABLE),
        "period_s": (None, ("int", 10, _WEEK_S)),
        "batch_size": (20, ("int", 1, 100)),  # readings per PUBLISH
        "window_s": (180, ("int", 30, 3600)),  # the whole upload window, power-on to off
    },
    "queue": {
        "path": ("queue", ("text", _is_path, "a folder on flash: letters, digits, '-', '_', '.', '/'")),
        "max_readings": (1000, ("int", 1, 100000)),
        "max_bytes": (65536, ("int", 1024, 1048576)),  # a rewrite briefly needs as much again
        "max_reading_bytes": (256, ("int", 16, 4096)),  # batch_size of them make one PUBLISH
    },
    "pins": {
        "pwrkey": (PINS["pwrkey"], ("pin", "out")),
        "flight": (PINS["flight"], ("pin", "out"), NULLABLE),
        "status": (PINS["status"], ("pin", "in"), NULLABLE),
        "dtr": (PINS["dtr"], ("pin", "out"), NULLABLE),
        "ri": (PINS["ri"], ("pin", "in"), NULLABLE),
        "power_en": (None, ("pin", "out")),
        "reset": (None, ("pin", "out")),
        "battery_adc": (PINS["battery_adc"], ("pin", "adc"), NULLABLE),
    },
    "uart": {
        "id": (1, ("choice", (1, 2), "UART0 carries the REPL")),
        "tx": (UART_PINS["tx"], ("pin", "out")),
        "rx": (UART_PINS["rx"], ("pin", "in")),
        # AT+IPR rates of the SIM7600
        "baud": (115200, ("choice", (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400,
                                     460800, 921600, 3000000, 3200000, 3686400), "a rate of AT+IPR")),
        "address": (None, ("text", _is_address, "host:port of a modem emulator (PC only)")),
    },
    "sleep": {
        "mode": ("light", ("choice", ("light", "deep"),
                           "light keeps the ESP32 running; deep resets it at each wake")),
    },
    "time": {
        # where a window reads the time (the modem driver): the network's (AT+CTZU,
        # AT+CCLK?, +CTZV; NTP when it has none), NTP only, or none at all
        "source": ("network", ("choice", ("network", "ntp", "off"),
                               "network: the operator's time, NTP if it sends none; ntp; off")),
        # a correction of the RTC larger than this is reported in health as clock_step_s
        "max_step_s": (120, ("int", 1, _WEEK_S)),
    },
    "retry": {
        # after a failed window the next one waits min, then doubles up to max
        "backoff_min_s": (60, ("int", 1, _DAY_S)),
        "backoff_max_s": (3600, ("int", 1, _WEEK_S)),
    },
    "downlink": {
        # commands answered a window; more stay at the broker (unacknowledged) for the next
        "max_per_window": (20, ("int", 1, 100)),
    },
    "memwatch": check_memwatch,
    "modem": _check_modem,
}


def load(path, device_id=None):
    """Read and validate a config.json; returns the validated dict."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError(path, "the file cannot be read; copy config.example.json there")
    try:
        raw = json.loads(text)
    except ValueError:
        raise ConfigError(path, "not valid JSON")
    return validate(raw, device_id)


def validate(raw, device_id=None):
    """Check a configuration dict; returns a new dict with the defaults filled in.
    device_id is the hardware's id (default port.unique_id()); a "device_id" key
    in the configuration overrides it."""
    _refuse_credentials(raw, "")
    config = _section(raw, SCHEMA, "")
    if config["device_id"] is None:
        config["device_id"] = port.unique_id() if device_id is None else device_id
        _check("device_id", config["device_id"], _DEVICE_RULE, False)
    broker = config["broker"]
    if broker["client_id"] is None:
        broker["client_id"] = config["device_id"]
    _check_pins(config)
    _check_limits(config)
    _check_tls(broker)
    _resolve_topics(config)
    return config


def transport_factory(config):
    """The window's transport factory for config["transport"] (transport.py), with the
    modules the configured transport and TLS need loaded now, at boot, while the heap
    is whole (loading needs contiguous blocks); AT never loads PPP. A flash without one
    of them stops the boot with a ConfigError naming the key and the module. Here, not
    in transport.py: like the checking, a board needs it only at boot."""
    ppp = config["transport"] == "ppp"
    if config["broker"]["tls"]:
        need("cellmqtt.port._tls" if ppp else "cellmqtt.modem.tls", "broker.tls")
    if not ppp:
        return need("cellmqtt.transport", "transport").ModemTransport
    port.collect()
    need("cellmqtt.modem.ppp", "transport")
    if port.NAME == "esp32":  # the board's network.PPP glue
        need("cellmqtt.port.esp32_ppp", "transport")
    return need("cellmqtt.transport_ppp", "transport").PppTransport


def need(name, key):
    """Import a module the configuration `key` asks for; ConfigError if the board lacks it."""
    try:
        return __import__(name, None, None, ("_",))
    except ImportError as error:
        raise ConfigError(key, "needs %s, missing from the board (%s)" % (name.replace(".", "/") + ".py", error))


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def start(path):
    """app.main's boot: the configuration loaded and checked, the broker login read and
    the duty cycle built; None in safe mode or when the configuration is refused (printed)."""
    from .app import DutyCycle

    if exists(SAFE_MODE_FILE):
        print("safe mode: the duty cycle does not start (remove %s to run it)" % SAFE_MODE_FILE)
        return None
    try:
        config = load(path)
        login = tls = None
        # secrets.py loads only when there is something for it to read (its code costs heap)
        if config["broker"]["tls"] or exists(SECRETS_FILE):
            from . import secrets

            login = secrets.load(SECRETS_FILE)
            tls = secrets.tls_files(config["broker"], login)
        return DutyCycle(config, secrets=login, tls=tls)
    except ConfigError as error:  # names the key, never a secret's value
        print("configuration error:", error)
        return None


def power_lines(pins=None, board=port):
    """The lines power.PowerManager drives and reads, from a pin map (default: PINS), in
    their levels at rest: PWRKEY released, FLIGHT high (radio allowed), DTR low (awake),
    power-enable low; None for a line the board does not wire. `board` makes the pins."""
    pins = PINS if pins is None else pins
    lines = [board.output_pin(pins["pwrkey"], 0)]
    for name, level in (("flight", 1), ("dtr", 0), ("power_en", 0)):
        number = pins.get(name)
        lines.append(None if number is None else board.output_pin(number, level))
    number = pins.get("status")
    lines.append(None if number is None else board.input_pin(number))
    return lines


def cycle_parts(config, sensor, store, power, watch, book, transport):
    """What app.DutyCycle is made of, a part not given made as configured: (config,
    ledger, sensor, store, power, watch, period_s, inbox, transport factory). The config
    it holds leaves out the sections only these parts read, made here once."""
    from .app import SETTINGS_FILE

    pins = config["pins"]
    queue = config["queue"]
    book = device_ledger if book is None else book
    if store is None:  # not `store or`: an empty Store is falsy (len 0)
        store = Store(queue["path"], queue["max_readings"], queue["max_bytes"], queue["max_reading_bytes"],
                      ledger=book)
    if watch is None:  # the device's watchdog, as configured: `free` reads the same one
        watch = memwatch.watch = memwatch.MemWatch(config["memwatch"])
    try:  # what downlink commands changed (commands.py)
        with open(SETTINGS_FILE) as f:
            settings = json.loads(f.read())
    except (OSError, ValueError):
        settings = None
    period = config["sampling"]["period_s"]
    if type(settings) is dict:
        period = settings.get("period_s", period)
    if transport is None:  # the modem layers load here, not with app.py
        transport = transport_factory(config)
    held = {key: config[key] for key in config if key not in ("queue", "memwatch", "downlink", "sampling")}
    if power is None:
        power = PowerManager(power_lines(pins), ready_timeout_ms=config["modem"]["boot_timeout_s"] * 1000)
    return (held, book, sensor or BoardSensor(pins["battery_adc"]), store, power, watch, period,
            Inbox(config["downlink"]["max_per_window"], config["topics"]["command"]), transport)


def _refuse_credentials(raw, prefix):
    if type(raw) is not dict:
        return
    for key, value in raw.items():
        if key == "password" or key == "username":
            raise ConfigError(prefix + key, "credentials do not belong in config.json: put them in secrets.json")
        _refuse_credentials(value, prefix + key + ".")


def _section(raw, schema, prefix):
    if type(raw) is not dict:
        raise ConfigError(prefix[:-1] or "config", "an object with keys: " + ", ".join(sorted(schema)))
    for key in raw:
        if key not in schema:
            raise ConfigError(prefix + key, "unknown key; allowed here: " + ", ".join(sorted(schema)))
    out = {}
    for key, spec in schema.items():
        dotted = prefix + key
        if type(spec) is dict:
            out[key] = _section(raw.get(key, {}), spec, dotted + ".")
        elif callable(spec):
            value = raw.get(key, {})
            if type(value) is not dict:
                raise ConfigError(dotted, "an object")
            out[key] = spec(value)
        else:
            default, rule = spec[0], spec[1]
            nullable = default is None or len(spec) > 2
            if key in raw:
                value = raw[key]
            elif default == REQUIRED:
                raise ConfigError(dotted, "required: " + _describe(rule, False))
            else:
                value = default
            _check(dotted, value, rule, nullable)
            out[key] = value
    return out


def _check(key, value, rule, nullable):
    if value is None:
        if nullable:
            return
        ok = False
    else:
        kind = rule[0]
        if kind == "int":
            ok = type(value) is int and rule[1] <= value <= rule[2]
        elif kind == "choice":
            ok = False
            for choice in rule[1]:
                if type(value) is type(choice) and value == choice:
                    ok = True
        elif kind == "text":
            ok = type(value) is str and rule[1](value)
        else:
            _check_pin(key, value, rule[1])
            return
    if not ok:
        raise ConfigError(key, _describe(rule, nullable))


def _describe(rule, nullable):
    kind = rule[0]
    if kind == "int":
        text = "an integer from %d to %d" % (rule[1], rule[2])
    elif kind == "choice":
        text = "one of: %s (%s)" % (", ".join([json.dumps(c) for c in rule[1]]), rule[2])
    elif kind == "text":
        text = rule[2]
    else:
        text = _PIN_TEXT
    return text + " or null" if nullable else text


def _check_pin(key, value, role):
    # ESP32 GPIOs a board can use: 6-11 hold the SPI flash, 20, 24 and 28-31 do not exist
    if type(value) is not int or not (0 <= value <= 5 or 12 <= value <= 19 or (21 <= value <= 27 and value != 24)
                                      or 32 <= value <= 39):
        raise ConfigError(key, _PIN_TEXT)
    if role == "out" and value >= 34:
        raise ConfigError(key, "an output: GPIO 34-39 are input-only")
    if role == "adc" and value < 32:
        raise ConfigError(key, "an ADC1 GPIO (32-39): ADC2 is shared with the radio")


def _check_pins(config):
    owners: dict = {}
    # every GPIO key, in a fixed order (dict order differs between runtimes)
    for section, key in (("pins", "pwrkey"), ("pins", "flight"), ("pins", "status"), ("pins", "dtr"),
                         ("pins", "ri"), ("pins", "power_en"), ("pins", "reset"), ("pins", "battery_adc"),
                         ("uart", "tx"), ("uart", "rx")):
        number = config[section][key]
        if number is None:
            continue
        dotted = section + "." + key
        if number in owners:
            raise ConfigError(dotted, "GPIO %d is already %s; each pin has one job" % (number, owners[number]))
        owners[number] = dotted


def _check_limits(config):
    queue = config["queue"]
    least = RECORD_OVERHEAD + queue["max_reading_bytes"]  # the journal holds one reading and its mark
    if queue["max_bytes"] < least:
        raise ConfigError("queue.max_bytes", "at least queue.max_reading_bytes + %d (%d)" % (RECORD_OVERHEAD, least))
    upload = config["upload"]
    if upload["every_n_readings"] is None and upload["period_s"] is None:
        raise ConfigError("upload.every_n_readings", "upload.every_n_readings or upload.period_s must be set")
    for key in ("every_n_readings", "batch_size"):
        value = upload[key]
        if value is not None and value > queue["max_readings"]:
            raise ConfigError("upload." + key, "at most queue.max_readings (%d)" % queue["max_readings"])
    retry = config["retry"]
    if retry["backoff_max_s"] < retry["backoff_min_s"]:
        raise ConfigError("retry.backoff_max_s", "at least retry.backoff_min_s (%d)" % retry["backoff_min_s"])


def _check_tls(broker):
    if broker["tls"] and broker["cafile"] is None:
        raise ConfigError("broker.cafile", "required with broker.tls: the CA that signed the broker's certificate")
    if not broker["tls"]:
        for key in ("cafile", "certfile"):
            if broker[key] is not None:
                raise ConfigError("broker." + key, "only with broker.tls true")


def _resolve_topics(config):
    topics = config["topics"]
    device = config["device_id"]
    for key in topics:
        topic = topics[key] = topics[key].replace("{device}", device)
        reason = filter_error(topic) if key == "command" else topic_error(topic)
        if reason is None and topic.startswith("$"):
            reason = "topics starting with '$' belong to the broker"
        if reason is not None:
            raise ConfigError("topics." + key, "%s: %r" % (reason, topic))
    for key in ("data", "health", "status"):  # the topics the device publishes on
        if matches(topics["command"], topics[key]):
            raise ConfigError("topics.command", "it matches topics.%s: the device would read its own messages" % key)
