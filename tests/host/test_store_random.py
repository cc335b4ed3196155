# The durable queue under random operation sequences, bounds and power cuts
# (hypothesis): the fixed matrix of tests/test_store.py, generalised.
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellmqtt.ledger import Ledger
from cellmqtt.store import Store
from support import remove_tree, temp_folder
from test_store import CutFiles, PowerCut, _state

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 30)),  # padding of the reading
        st.tuples(st.just("ack"), st.integers(0, 6)),  # how many of the oldest to acknowledge
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    min_size=1, max_size=30)
BOUNDS = st.fixed_dictionaries({
    "max_readings": st.integers(1, 8),
    "max_bytes": st.integers(200, 600),
    "max_reading_bytes": st.just(64),
})
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _play(folder, operations, bounds, files, trace=None):
    """Play operations; returns the index of the one the power was cut in, or -1."""
    index = -1
    try:
        q = Store(folder, ledger=Ledger(), files=files, **bounds)
        if trace is not None:
            trace.append(_state(q))
        for index, (action, amount) in enumerate(operations):
            if action == "append":
                q.append({"i": index, "pad": "p" * amount})
            elif action == "ack":
                q.ack(min(q.next_seq - 1, q.next_seq - 1 - q.depth + amount))
            else:
                q = Store(folder, ledger=Ledger(), files=files, **bounds)
            if trace is not None:
                trace.append(_state(q))
    except PowerCut:
        return index
    return -1


@SETTINGS
@given(OPERATIONS)
def test_random_operations_match_a_model_of_the_count_bound(operations):
    root = temp_folder("cellmqtt-store")
    try:
        bounds = {"max_readings": 5, "max_bytes": 1 << 20, "max_reading_bytes": 64}
        q = Store(root + "/q", **bounds)
        model = []  # (seq, index) oldest first
        dropped = 0
        for index, (action, amount) in enumerate(operations):
            if action == "append":
                seq = q.append({"i": index, "pad": ""})
                model.append((seq, index))
                if len(model) > 5:
                    model.pop(0)
                    dropped += 1
            elif action == "ack" and model:
                upto = model[min(amount, len(model) - 1)][0]
                q.ack(upto)
                model = [entry for entry in model if entry[0] > upto]
            else:
                q = Store(root + "/q", **bounds)
            assert [(seq, body["i"]) for seq, body in q.peek(10)] == model
            assert q.dropped == dropped
    finally:
        remove_tree(root)


@SETTINGS
@given(OPERATIONS, BOUNDS, st.floats(0, 1), st.booleans())
def test_a_power_cut_anywhere_leaves_the_old_or_the_new_state(operations, bounds, where, fat):
    root = temp_folder("cellmqtt-store")
    try:
        expected = [([], 0, 1)]
        probe = CutFiles()
        assert _play(root + "/ref", operations, bounds, probe, expected) == -1
        cut_at = int(where * (probe.steps - 1))
        index = _play(root + "/cut", operations, bounds, CutFiles(cut_at, fat))
        # expected[0] is the empty folder, expected[1] the opened store, then one per operation
        before, after = (expected[0], expected[1]) if index < 0 else (expected[index + 1], expected[index + 2])
        q = Store(root + "/cut", **bounds)
        state = _state(q)
        assert state == before or state == after, (index, state, before, after)
        assert q.append({"after": 1}) == state[2] >= before[2]
    finally:
        remove_tree(root)
