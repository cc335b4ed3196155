"""A SIM7600 on the PC: the modem's UART over TCP (or a pty), its AT dialect byte for
byte as docs/modem.md has it, its power pins, and ten TCP links each bridged to a
real loopback connection.

  python -m tools.sim7600_emu [--listen HOST:PORT] [--control HOST:PORT] [--power on|off]
      [--time-scale F] [--pins PWRKEY=4,FLIGHT=25,...] [--fault NAME[:K=V,...] ...]
      [--quirk NAME|all ...] [--list-quirks] [--pty] [--seed N] [--inputs FILE] [--trace]

prints `UART host:port` (or `PTY /dev/pts/N`) and `CONTROL host:port`, then serves until
SIGTERM or SIGINT and exits 0. The UART serves one TCP connection at a time: a second one
waits, unread, until the first closes. A dropped connection changes nothing in the modem
(an unplugged cable), and what the modem sends while nobody is connected is lost.
Command lines end with CR, as on the real modem (`nc -C` or socat's `crlf` for typing).
In Python (CPython, inside a running event loop):

  emu = Emulator(power_on=True, time_scale=0.0, pins=None, quirks=())
  await emu.start(uart="127.0.0.1:0", control="127.0.0.1:0")
  emu.uart_address, emu.control_address      # "host:port"
  emu.fault("cme", code=10); emu.clear_faults(); emu.state(); emu.reset()
  emu.set_quirks(["no_space"], on=True)
  await emu.stop()

From blocking code (tests, scripts), `threaded.ThreadedEmulator` runs one on a thread of
its own, with `threaded.Wire` and `threaded.Control` as blocking clients.

The model. Off, the modem ignores the UART. A PWRKEY press (SET high, then low; the
press measured on the model clock) of >= 100 ms boots it: silent for 12 s, then STATUS
high and `RDY`, `+CPIN: READY`, `SMS DONE`, `PB DONE`; registered 2 s later. A press of
>= 2.5 s while on shuts it down (UART silent and links reset at once, STATUS low 5 s
later), as does AT+CPOF; with --time-scale 0 any press toggles. FLIGHT low (or AT+CFUN=0/4) turns the
radio off: stat 0, CSQ 99,99, and an open network is lost. Optional pins: POWER_EN low
cuts the supply; RESET high holds the module in reset, low again boots it. With
AT+CSCLK=1 and DTR high the modem sleeps: it ignores the UART, and a URC pulses RI low
for 120 ms. Model latencies: NETOPEN 1 s, NETCLOSE 0.3 s, CIPOPEN 0.3 s plus the real
connect, CIPCLOSE 0.1 s, send 50 ms; --time-scale multiplies all of them (0 = none).
A boot restores the defaults: echo on, AT+CMEE=1, push receive mode.

The SSL stack (tls.py): AT+CCERTDOWN/CCERTLIST/CCERTDELE, AT+CSSLCFG, AT+CCHSET,
AT+CCHSTART/CCHSTOP, AT+CCHSSLCFG, AT+CCHOPEN/CCHSEND/CCHRECV/CCHCLOSE with real TLS
(Python's ssl, TLS 1.2 at most) on the bridged connection, the server verified against
the uploaded CA and the host given to AT+CCHOPEN; a refused handshake is
`+CCHOPEN: <s>,15` (the cause goes to the emulator's log), the server's close
`+CCH_PEER_CLOSED: <s>`. Files survive power cycles; a control-port RESET empties them.

Links connect only to loopback addresses (127.0.0.0/8, ::1, localhost); any other
host gets `+CIPOPEN: <l>,1` (an address) or `+CIPOPEN: <l>,11` (a name) after the OK.
A refused connect is `+CIPOPEN: <l>,1`, a connect past the AT+CIPTIMEOUT open timeout
`+CIPOPEN: <l>,10`. Each link buffers up to 64 KiB in manual receive mode; past that
the emulator stops reading the remote (TCP flow control), so nothing is dropped.

Control port (TCP, LF-terminated lines, one reply line each, several clients at once):
  SET <gpio> <0|1>   OK      drive PWRKEY, FLIGHT, DTR, POWER_EN, RESET (the pin map)
  GET <gpio>         0|1     STATUS, RI, or the last level set on any other GPIO
  ADC <gpio>         mV      at the pin: on BAT_ADC the battery (about 3950) through the
                             board's 100k/100k divider (about 1975), 0 elsewhere
  POWER ON|OFF       OK      booted and registered at once (boot URCs sent) / off at once
  RESET              OK      a fresh emulator in the start-up power state
  FAULT <name> [k=v ...] OK  see below        CLEAR  OK  all faults off
  QUIRK ON|OFF <name|all> ... OK  quirks on or off (see below)
  QUIRK              names   the quirks on, space-separated, or `none`
  STATE              {json}  powered, status_pin, netopen, links, registered,
                             uart_rx_bytes, uart_tx_bytes, commands, powered_ms,
                             power_cycles, echo, data_mode, call (none|data|command),
                             ppp_sessions (CONNECTs), ppp_escapes (+++ taken),
                             data_rx_bytes, tls_sessions
                             (open SSL sessions), tls_started (AT+CCHSTART),
                             tls_files (certificate files in the modem's flash),
                             quirks (the names on)
  WINDOW <n>         {json}|PENDING  the modem as the n-th UART connection left it: window,
                             powered, status_pin, links, tls_sessions, call (windows.py)
  HOLD ON|OFF        OK      a press that would switch the modem on waits for GO
  GO <n>             OK|NOT HELD  window n may power on (once; windows.py)
  anything else      ERR <reason>
With --inputs FILE (a simulated board's input file, model.input_file) the emulator also
keeps the levels of STATUS and RI in FILE, one byte at each one's GPIO, as they change:
the board reads them there at once, as a pin is read, without a GET; and 16 readings of
BAT_ADC drawn as ADC answers them, afresh as the modem goes off, which the board reads in
turn without an ADC request.

Faults (control `FAULT name k=v`, CLI `--fault name:k=v,...`, `emu.fault(name, k=v)`).
`command=` is a case-insensitive prefix of the command line (empty: every command);
`count=` how many times it fires (0: until CLEAR); `skip=` how many matching commands
pass untouched first (the third CIPSEND: `command=AT+CIPSEND skip=2`). garbage,
truncate, remote_close, send_timeout and network_lost take `command=` and `skip=` too:
given a command they wait for it and strike as it arrives (truncate: its answer), so a
fault lands at an exact point of a session (`FAULT network_lost command=AT+CIPSEND skip=2`).
  silent [command= count=0 skip=0]  the command is swallowed: no echo, no answer
  error [command= count=0]       bare ERROR instead of the answer
  cme [command= count=0 code=100]  +CME ERROR: <code> (in the AT+CMEE form)
  garbage [bytes=16 seed=]       random bytes on the UART now, even while off
  truncate [count=1]             the next answer stops in the middle of its first line
                                 and the rest of it is never sent
  remote_close link=n            the remote closes link n now: +IPCLOSE: n,1
  send_timeout link=n            link n times out now: +IPCLOSE: n,2 (connection reset)
  network_lost                   +CIPEVENT: NETWORK CLOSED UNEXPECTEDLY, every link
                                 gone without +IPCLOSE (the network must be open)
  reg_denied                     stat 3 until CLEAR (NETOPEN then gives +NETOPEN: 1)
  no_sim                         AT+CPIN?, AT+CIMI, AT+CICCID answer +CME ERROR: 10,
                                 stat 0; a boot sends only RDY
  no_signal                      +CSQ: 99,99 and stat 2 (searching) until CLEAR
  short_send [count=1]           the next CIPSEND confirms half: +CIPSEND: l,req,req/2
                                 (only that half reaches the remote)
  open_fail [count=1 err=1]      the next CIPOPEN answers +CIPOPEN: <l>,<err> and ERROR
  brownout [command=] [skip=]    power lost now (or when a matching command arrives,
                                 after its echo): no answer, links reset, STATUS low
  no_carrier [count=1]           the next dial answers NO CARRIER
  carrier_drop [ms=]             the data call drops now (NO CARRIER); with ms= the
                                 next CONNECT drops that many model ms later
  escape_ignored [count=1]       the next valid +++ is taken as data: no OK

Quirks (quirks.py; `--list-quirks` prints them): field behaviours of real modems that
the manual does not give, which the modem then has all the time: `--quirk NAME`
(repeatable, `all` for every one) or `Emulator(quirks=[...])` from the start, which a
RESET goes back to; `QUIRK ON|OFF name ...` on the control port until the next RESET.
CLEAR leaves them alone. no_space, trailing_space, late_ip_error, two_errors,
sim_failure_at_boot, slow_boot, boot_urcs_again, urc_before_answer, cpin_silent_once,
reg_unknown_first, network_closed, cipopen_urc_first, blank_lines, pieces.

Data calls (ppp.py): ATD*99# or AT+CGDATA="PPP",1 -> CONNECT 115200 (NO CARRIER when
not registered, ERROR without an APN in the context); in data mode nothing is parsed
as AT; +++ between two 1 s guard times of silence -> OK; ATO, ATH; DTR off with
AT&D1/AT&D2; power loss ends the call silently.
Immediate faults with nothing to act on (a link that is not open, a closed network)
are refused: ValueError, or `ERR ...` on the control port.

Choices where docs/modem.md is silent: the send prompt is `\\r\\n>`; AT+NETCLOSE
closes the links without a URC per link; AT+CIPCLOSE keeps the link in the table until
its +CIPCLOSE URC; CIPOPEN without NETOPEN answers `+IP ERROR: Network not opened`;
an open link asked again answers `+IP ERROR: Connection is already created`; a link's
unread bytes survive its remote close until the number is opened again; AT+CIPCLOSE of
a link still connecting cancels the connect (no +CIPOPEN follows). Power loss, network
loss and send_timeout reset the bridged connection (RST); AT+CIPCLOSE, AT+NETCLOSE and
remote_close close it politely (FIN).
"""

from .emulator import Emulator

__all__ = ["Emulator"]
