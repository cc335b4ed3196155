"""Every wait of the modem layer: one table of bounds in ms.

AtChannel(timeouts={...}) overrides entries; a command's key is its name
(at.command_name). "manual" marks the max response time given in the SIM7500/SIM7600 AT
Command Manual; "ours" a bound we chose, with its reason.
"""

TIMEOUTS_MS = {
    "default": 9000,  # manual: the max response time of most commands
    "AT": 1000,  # ours: a local answer, no network involved
    "E0": 1000,  # ours: ATE0, local
    "+CPIN": 5000,  # manual
    "+NETOPEN": 120000,  # manual: 120 s max (AT+CIPTIMEOUT), includes the +NETOPEN URC
    "+NETCLOSE": 120000,  # manual: as NETOPEN
    "+CIPOPEN": 120000,  # manual: 120 s max, includes the +CIPOPEN URC
    "+CIPSEND": 120000,  # manual: 120 s max, prompt + data + the +CIPSEND URC
    "+CIPCLOSE": 120000,  # ours, as the other socket commands: the +CIPCLOSE URC
    "+CCHSTART": 120000,  # manual: 120 s max, includes the +CCHSTART URC
    "+CCHSTOP": 120000,  # ours, as CCHSTART: the +CCHSTOP URC
    "+CCHOPEN": 120000,  # ours, as CIPOPEN: connect and TLS handshake, the +CCHOPEN URC
    "+CCHSEND": 120000,  # ours, as CIPSEND: prompt + data + the +CCHSEND URC
    "+CCHCLOSE": 120000,  # ours, as CIPCLOSE: the +CCHCLOSE URC
    "+CNTP": 65000,  # ours: an NTP exchange over the network, the +CNTP URC
    "+CCERTDOWN": 20000,  # ours: prompt + up to 10 KiB at 115200 baud + a flash write
    "probe": 300,  # ours: AT probe interval while booting (TinyGSM: 300 ms)
    "boot": 16000,  # hardware design 3.2: UART answers 11-12 s after PWRKEY; LilyGO waits 15 s
    "sim": 10000,  # ours: +CME ERROR: 14 (SIM busy) or 13 (SIM failure) right after boot, retried this long
    "register": 60000,  # ours: registration on a weak cell; past it the cycle is lost anyway
    "requery": 5000,  # ours: registration asked again while no report came (one may be lost)
    "read": 300000,  # ours: a link read with no data at all; above any MQTT keep-alive
    "coalesce": 10,  # ours: a link's writes gathered until none came for this long (link.py)
    "late": 1000,  # ours: how long the next command waits for a given-up command's answer,
    # and for the ERROR lines that trail an +IP ERROR/+CIPERROR
    "dial": 60000,  # ours: ATD*99# to CONNECT; a data call that takes longer is not coming
    "O": 20000,  # ours: ATO back to CONNECT (the call is already up)
    "H": 20000,  # ours: ATH; the modem answers once the call is down
    "guard": 1200,  # manual: +++ needs 1 s of silence before and after; 20% margin for jitter
    "escape": 3000,  # ours: OK after +++ (past the guard) or after a DTR drop
    "dtr": 100,  # ours: DTR held off this long for AT&D1 to see the ON->OFF edge
    "ppp_up": 30000,  # ours: PPP negotiation (LCP, IPCP) until an address
    "ppp_down": 4000,  # ours: as network_ppp's own close timeout (micropython issue 11419)
}


def check_timeouts(overrides):
    """Unknown names and non-positive values in overrides are ConfigErrors (any +NAME
    is allowed: it sets that command's own timeout). config.py words the error: its
    code is boot-only, loaded again only for a bad table."""
    for name, value in (overrides or {}).items():
        unknown = name not in TIMEOUTS_MS and not name.startswith("+")
        if unknown or type(value) is not int or value < 1:
            from ..config import timeout_error

            raise timeout_error(name, unknown)
