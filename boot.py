# Board bring-up: the cellmqtt REPL commands become bare words (`free`, `list_fd`,
# `netstat`); their code loads when one is first typed.
from cellmqtt import repl

repl.install(globals())
del repl
