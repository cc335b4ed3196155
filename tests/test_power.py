from cellmqtt import port, power
from cellmqtt.config import PINS, power_lines
from cellmqtt.errors import ModemError, StateError
from support import raises, run


class FakeModemBoard:
    """Pins wired to a modem model: a PWRKEY press toggles power, STATUS follows it."""

    def __init__(self, starts=True, stops_on_key=True):
        self.levels = {}
        self.powered = False
        self.starts = starts
        self.stops_on_key = stops_on_key
        self.presses = []

    def output_pin(self, number, value=0):
        return _Pin(self, number, value)

    def input_pin(self, number):
        return _Pin(self, number, None)

    def released(self, number, held_ms):
        if number != 4:
            return
        self.presses.append(held_ms)
        if self.powered and self.stops_on_key:
            self.powered = False
        elif not self.powered and self.starts:
            self.powered = True


class _Pin:
    def __init__(self, board, number, value):
        self.board = board
        self.number = number
        self.pressed_at = None
        if value is not None:
            board.levels[number] = value

    def value(self, level=None):
        if level is None:
            if self.number == 34:
                return 1 if self.board.powered else 0
            return self.board.levels.get(self.number, 0)
        if self.number == 4 and level and not self.board.levels.get(4):
            self.pressed_at = port.ticks_ms()
        elif self.number == 4 and not level and self.board.levels.get(4):
            self.board.released(4, port.ticks_diff(port.ticks_ms(), self.pressed_at))
        self.board.levels[self.number] = level
        return None


def _manager(board, pins=None, **options):
    options.setdefault("press_on_ms", 20)
    options.setdefault("press_off_ms", 40)
    options.setdefault("ready_timeout_ms", 300)
    options.setdefault("off_timeout_ms", 300)
    return power.PowerManager(power_lines(pins, board), **options)


def test_power_on_presses_pwrkey_and_waits_for_status():
    board = FakeModemBoard()
    manager = _manager(board)
    run(manager.power_on())
    assert manager.state == power.ON and board.powered
    assert board.levels[25] == 1 and board.levels[32] == 0 and board.levels[4] == 0
    assert len(board.presses) == 1 and board.presses[0] >= 19


def test_power_off_by_cpof_needs_no_key_press():
    board = FakeModemBoard()
    manager = _manager(board)
    run(manager.power_on())

    async def cpof():
        board.powered = False

    run(manager.power_off(cpof))
    assert manager.state == power.OFF and len(board.presses) == 1
    assert manager.power_cycles == 1 and manager.total_on_ms >= manager.cycle_on_ms >= 0


def test_power_off_falls_back_to_the_long_press_when_cpof_fails():
    board = FakeModemBoard()
    manager = _manager(board)
    run(manager.power_on())

    async def broken_cpof():
        raise ModemError("no answer")

    run(manager.power_off(broken_cpof))
    assert manager.state == power.OFF and not board.powered
    assert board.presses[1] >= 39


def test_cpof_whose_answer_was_lost_is_not_followed_by_a_key_press():
    board = FakeModemBoard()
    manager = _manager(board)
    run(manager.power_on())

    async def cpof_answer_lost():
        board.powered = False  # the modem took the command; its OK never arrived
        raise ModemError("no answer")

    run(manager.power_off(cpof_answer_lost))
    assert manager.state == power.OFF and not board.powered
    assert len(board.presses) == 1  # a press would have switched it back on


def test_power_off_falls_back_to_power_enable():
    board = FakeModemBoard(stops_on_key=False)
    pins = dict(PINS, power_en=12)
    manager = _manager(board, pins=pins)
    run(manager.power_on())
    assert board.levels[12] == 1
    run(manager.power_off())
    assert manager.state == power.OFF and board.levels[12] == 0


def test_power_off_that_cannot_succeed_is_a_typed_error():
    board = FakeModemBoard(stops_on_key=False)
    manager = _manager(board)
    run(manager.power_on())
    error = raises(ModemError, run, manager.power_off())
    assert "still on" in str(error)


def test_modem_that_never_starts_is_a_typed_error_and_stays_off():
    board = FakeModemBoard(starts=False)
    manager = _manager(board)
    error = raises(ModemError, run, manager.power_on())
    assert "did not start" in str(error) and manager.state == power.OFF


def test_ready_callback_ends_the_wait_without_status():
    board = FakeModemBoard()
    pins = dict(PINS, status=None)
    manager = _manager(board, pins=pins)
    calls = []

    async def ready():
        calls.append(1)
        return True

    run(manager.power_on(ready))
    assert manager.state == power.ON and calls == [1] and manager.status_high() is None


def test_illegal_transitions_are_refused():
    manager = _manager(FakeModemBoard())
    assert raises(StateError, run, manager.power_off()).state == power.OFF
    run(manager.power_on())
    assert raises(StateError, run, manager.power_on()).action == "power on"


def test_modem_left_on_by_an_mcu_reset_is_not_pressed_off():
    board = FakeModemBoard()
    board.powered = True
    manager = _manager(board)
    run(manager.power_on())
    assert manager.state == power.ON and board.powered and board.presses == []


def test_modem_that_lost_power_is_not_sent_cpof():
    board = FakeModemBoard()
    manager = _manager(board)
    run(manager.power_on())
    board.powered = False
    sent = []

    async def cpof():
        sent.append(1)

    run(manager.power_off(cpof))
    assert manager.state == power.OFF and sent == [] and len(board.presses) == 1


def test_the_power_up_wait_has_margin_over_the_modems_16_s():
    # STATUS goes high 12-16 s after the press: a cold modem or a weak battery takes the top
    assert power.PowerManager(power_lines(board=FakeModemBoard())).ready_timeout_ms >= 20000
