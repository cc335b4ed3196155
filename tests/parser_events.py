# The AT parser's events for given bytes, as the AT channel drains them: shared by the
# parser's tests (a module of its own: importing another test module costs its heap).
from cellmqtt.modem.at_parser import PAYLOAD, AtParser


def events_of(data, chunk=None, parser=None):
    """Feed data in pieces of `chunk` bytes (None: all at once), draining events as
    the channel does; payload pieces are joined so the result does not depend on how
    the bytes were split."""
    parser = AtParser() if parser is None else parser
    out = []
    step = len(data) if chunk is None else chunk
    view = memoryview(data)
    while len(view):
        piece = view[:step]
        while len(piece):
            piece = piece[parser.feed(piece):]
            event = parser.next_event()
            while event is not None:
                if event[0] == PAYLOAD and out and out[-1][0] == PAYLOAD:
                    out[-1] = (PAYLOAD, out[-1][1] + event[1])
                else:
                    out.append(event)
                event = parser.next_event()
        view = view[step:]
    return out
