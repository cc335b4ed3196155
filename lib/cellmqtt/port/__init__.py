"""The port layer: everything that differs between the ESP32, the MicroPython unix
port on a PC and CPython. Chosen once, at import, from sys.implementation and
sys.platform. Nothing else in cellmqtt touches machine, network or OS modules.

Every implementation provides the same names:
  NAME                                  "esp32", "unix" or "cpython"
  ticks_ms() ticks_diff(a, b) ticks_add(t, d)   wrapping millisecond clock
  sleep_ms(ms)  async asleep_ms(ms)
  async hold_ms(ms)                     a wait no peer ends (PWRKEY held, the silence
                                        around +++): asleep_ms but on a simulated
                                        board's virtual clock, where it passes at once
  mem_free() mem_alloc() mem_total() collect()  heap figures, in bytes
  largest_free()                        the largest block one allocation gets now
  unique_id()                           the device id as a hex string
  reset()                               restart the MCU (does not return)
  deep_sleep(ms)                        sleep, then wake through a reset (does not return)
  utc() set_utc(seconds)                the RTC as UTC epoch seconds (None: never set);
                                        it keeps time across deep sleep and resets
  rtc_s()                               the RTC's own count of seconds: before set_utc()
                                        from power-on (a power loss restarts it)
  rtc_memory([data])                    bytes kept as the RTC's count is (b"" after a
                                        power loss)
  async open_uart(uart_config)          a Stream to the modem (config.json's uart, checked)
  async open_tls(address, ca, server_hostname=None, cert=None, key=None)
                                        a Stream over TLS (CA verification always on)
  output_pin(number, value) input_pin(number)   objects with .value([level])
  async open_tcp("host:port")           a plain TCP Stream (on the board: through PPP)
  new_ppp(call)  PPP_READS_UART         a PPP stack for a data call (network.PPP on
                                        the board, a stand-in on a PC; modem/ppp.py)
"""

import sys

if sys.implementation.name != "micropython":
    from .cpython import *  # noqa: F401,F403
elif sys.platform == "esp32":
    # The clock and the heap now, which is all the MQTT client needs; the board's pins and
    # UART (esp32.py) with the first name that asks for them, its PPP (esp32_ppp.py) apart:
    # a board on the modem's own TCP stack never loads that.
    from ._mp import (  # noqa: F401
        asleep_ms,
        collect,
        hold_ms,
        largest_free,
        mem_alloc,
        mem_free,
        mem_total,
        open_tls,
        sleep_ms,
        ticks_add,
        ticks_diff,
        ticks_ms,
    )

    def __getattr__(name):
        if name[0] == "_":
            raise AttributeError(name)
        # by full name: `from . import esp32` would ask this function for "esp32" first
        ppp = name == "new_ppp" or name == "open_tcp" or name == "PPP_READS_UART"
        half = ".esp32_ppp" if ppp else ".esp32"
        value = getattr(__import__(__name__ + half, None, None, ("_",)), name)
        globals()[name] = value  # looked up here from now on
        return value
else:
    from .unix import *  # noqa: F401,F403
