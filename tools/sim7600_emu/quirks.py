"""Quirks: what real SIM7600s (and modems of their family) do in the field that the manual
does not say, each one a behaviour the emulated modem then has all the time (unlike a
fault, which strikes once or until CLEAR). Set from the start (`--quirk NAME`, `--quirk
all`, `Emulator(quirks=...)`) or on the control port (`QUIRK ON|OFF NAME ...`); a RESET
goes back to the start-up set, CLEAR leaves them alone."""

# name -> what the modem then does; the order of `--list-quirks`
QUIRKS = {
    "no_space": "URCs and payload headers without the space after the colon "
                "(+CIPRXGET:1,0, +CIPRXGET:2,0,4,0, +CPIN:READY)",
    "trailing_space": "final results with a trailing space (OK , ERROR , +CME ERROR: 13 )",
    "late_ip_error": "the ERROR after an +IP ERROR comes late; and each AT+NETOPEN's OK is "
                     "followed by a late answer, +IP ERROR: Network not opened and its "
                     "ERROR, with no command in flight",
    "two_errors": "+CIPERROR: <err> is followed by two ERRORs, the second one late",
    "sim_failure_at_boot": "after a boot the first AT+CPIN? answers +CME ERROR: 13 (SIM "
                           "failure), the second 14 (SIM busy), and only then +CPIN: READY "
                           "comes (not with the boot URCs)",
    "slow_boot": "a boot takes 20 s instead of 12: STATUS high after 16 s, RDY and the "
                 "UART after 20 s (scaled by --time-scale)",
    "boot_urcs_again": "the boot URCs come twice, and SMS DONE, PB DONE, +CPIN: READY once "
                       "more when the first link of a boot opens",
    "urc_before_answer": "a URC before each command line's echo (SMS DONE, when echo is on) "
                         "and one between the echo and the answers (PB DONE)",
    "cpin_silent_once": "after a boot the first AT+CPIN? goes unanswered (no echo either)",
    "reg_unknown_first": "after a boot the first three registration reads answer stat 4 "
                         "(+CEREG) or 11 (+CGREG, +CREG) before the real one",
    "network_closed": "when the last link closes the network goes too: +CIPEVENT: NETWORK "
                      "CLOSED UNEXPECTEDLY, no +IPCLOSE (AT+NETCLOSE then answers "
                      "+NETCLOSE: 2, ERROR)",
    "cipopen_urc_first": "AT+CIPOPEN's OK comes after its +CIPOPEN: <link>,<err> URC",
    "blank_lines": "an extra blank line before and after each answer and URC",
    "pieces": "everything the modem sends goes out in pieces of 1-7 bytes, each written on "
              "its own at the pace of 115200 baud",
}
ALL = "all"


def parse(names):
    """Quirk names (or "all") -> the set of names; ValueError for an unknown one."""
    chosen = set()
    for name in names:
        if name == ALL:
            chosen.update(QUIRKS)
        elif name in QUIRKS:
            chosen.add(name)
        else:
            raise ValueError("unknown quirk %r (known: %s, or all)" % (name, ", ".join(QUIRKS)))
    return chosen


def listing():
    """The `--list-quirks` text: one quirk a line, its name and what it does."""
    width = max(len(name) for name in QUIRKS)
    return "\n".join("%-*s  %s" % (width, name, text) for name, text in QUIRKS.items())
