"""Pictures of the graph and of a run: its shape, a run's path, ASCII, mermaid, Graphviz, HTML.

A front end (the top layer): it reads the compiled graph and a run's result, and draws them.
It may import the core (graph, runnable, state) and the contracts below them; Graphviz
(``pygraphviz``, the ``viz`` extra) is imported only when an SVG, PNG or HTML picture is drawn.
The chat and the command line import it; nothing below them does.
"""
