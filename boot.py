# Board bring-up: the cellmqtt REPL commands become bare words (`free`, `list_fd`).
from cellmqtt import shell

shell.install(globals())
del shell
