"""``hag-agent chat``: a terminal conversation showing what the model chose for its decoding."""
