"""The names of the modem's error codes, "|"-joined (link.error_name): loaded with the
first error that needs one, so an AT window that goes well never holds them."""

# the <err> of +NETOPEN, +CIPOPEN ... by code
NET_ERRORS = ("ok|network failure|network not opened|wrong parameter|not supported|create socket failed|"
              "bind failed|server already listening|busy|sockets opened|timeout|DNS parse failed|unknown")
# +CME ERROR codes 10-15 of AT+CPIN? (CMEE=1); with CMEE=2 the modem sends these texts.
# The 4th and 5th (failure, busy) are both seen for a moment early in boot (A76xx logs)
CME_SIM = "SIM not inserted|SIM PIN required|SIM PUK required|SIM failure|SIM busy|SIM wrong"
