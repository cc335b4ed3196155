# The duty cycle, driven by config.json (see the README). An empty file named
# safe_mode on the flash skips it and leaves the board at the REPL.
from cellmqtt import app

app.main()
