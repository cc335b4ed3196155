"""The bounds in ms of the modem's TLS and of PPP (at.py has the AT path's and
the key of each): loaded with tls.py or ppp.py, at boot, never on the AT path."""

TIMEOUTS_MS = {
    "+CCHSTART": 120000,  # manual: 120 s max, includes the +CCHSTART URC
    "+CCHSTOP": 120000,  # ours, as CCHSTART: the +CCHSTOP URC
    "+CCHOPEN": 120000,  # ours, as CIPOPEN: connect and TLS handshake, the +CCHOPEN URC
    "+CCHSEND": 120000,  # ours, as CIPSEND: prompt + data + the +CCHSEND URC
    "+CCHCLOSE": 120000,  # ours, as CIPCLOSE: the +CCHCLOSE URC
    "+CCERTDOWN": 20000,  # ours: prompt + up to 10 KiB at 115200 baud + a flash write
    "dial": 60000,  # ours: ATD*99# to CONNECT; a data call that takes longer is not coming
    "O": 20000,  # ours: ATO back to CONNECT (the call is already up)
    "H": 20000,  # ours: ATH; the modem answers once the call is down
    "guard": 1200,  # manual: +++ needs 1 s of silence before and after; 20% margin for jitter
    "escape": 3000,  # ours: OK after +++ (past the guard) or after a DTR drop
    "dtr": 100,  # ours: DTR held off this long for AT&D1 to see the ON->OFF edge
    "ppp_up": 30000,  # ours: PPP negotiation (LCP, IPCP) until an address
    "ppp_down": 4000,  # ours: as network_ppp's own close timeout (micropython issue 11419)
}
