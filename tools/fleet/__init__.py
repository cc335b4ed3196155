"""The fleet side, on a PC (nothing of it goes on a board):

  python -m tools.fleet collect [--broker HOST:PORT] [--db fleet.db|postgresql://...]
                                [--share GROUP] [--client-id ID] [--config FILE]
  python -m tools.fleet report  [--db ...] [--grace S] [--json] [--html DIR]
                                [--memwatch K=V,...] [--on-ma MA] [--sleep-ma MA]
  python -m tools.fleet sim     --boards N --windows W [--fault-rate R] --broker HOST:PORT
                                [--leaky-board K --leak-bytes B] [--json FILE]

collect stores every board's data, health and status messages (acknowledged to the
broker only once committed), report accounts for every reading and judges each
board's memory with the board's own watchdog, sim runs N boards (the real duty cycle
on emulated modems) against a broker. docs/fleet.md has the details.
"""
