"""Topic names and topic filters [MQTT-4.7]: validation and matching.

Validators return None when the string is fine, else a short reason, so the
caller raises the error of the right side (LocalProtocolError for what we send,
RemoteProtocolError for what the peer sent). Length in bytes (1..65535) is checked
where the string is encoded.

Matching takes the filter's levels, split once (a subscription keeps them), and
walks the topic with find/startswith, so matching a message allocates nothing.
"""


def topic_error(name):
    """Why `name` is not a valid PUBLISH topic name, or None [MQTT-4.7.3-1, 3.3.2-2]."""
    if not name:
        return "empty topic"
    if "\x00" in name:
        return "NUL in topic"
    if "+" in name or "#" in name:
        return "wildcard in topic name"
    return None


def filter_error(filter_):
    """Why `filter_` is not a valid topic filter, or None [MQTT-4.7.1-1..3]."""
    if not filter_:
        return "empty topic filter"
    if "\x00" in filter_:
        return "NUL in topic filter"
    end = len(filter_)
    start = 0
    while start <= end:
        stop = filter_.find("/", start)
        if stop < 0:
            stop = end
        size = stop - start
        if filter_.startswith("#", start):
            if size != 1 or stop != end:
                return "'#' must be the whole last level"
        elif filter_.startswith("+", start):
            if size != 1:
                return "'+' must be a whole level"
        else:
            plus = filter_.find("+", start, stop)
            hash_ = filter_.find("#", start, stop)
            if plus >= 0 or hash_ >= 0:
                return "wildcard inside a level"
        start = stop + 1
    return None


def matches_levels(levels, topic):
    """Whether the topic name matches a valid filter split into its `levels`."""
    # Topics starting with "$" are not matched by a leading wildcard [MQTT-4.7.2-1].
    first = levels[0]
    if topic.startswith("$") and (first == "+" or first == "#"):
        return False
    end = len(topic)
    start = 0
    for level in levels:
        if level == "#":
            return True  # also matches the parent level [MQTT-4.7.1-2]
        if start > end:
            return False
        stop = topic.find("/", start)
        if stop < 0:
            stop = end
        if level != "+":
            if stop - start != len(level) or not topic.startswith(level, start):
                return False
        start = stop + 1
    return start > end


def matches(filter_, topic):
    """Whether `topic` matches `filter_` (both strings); ValueError if the filter is invalid."""
    reason = filter_error(filter_)
    if reason is not None:
        raise ValueError(reason)
    return matches_levels(filter_.split("/"), topic)
