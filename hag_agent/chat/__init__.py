"""``hag-agent chat``: a terminal conversation showing what the model chose for its decoding.

A front end (the top layer): commands, pinned settings, sessions kept in SQLite through
LangGraph's checkpointer, and the views under each answer. It may import the core (the runnable,
the graph, state and context), the contracts below them, and `hag_agent.visualization` for the
``/graph`` view; nothing imports it but the command line.
"""
