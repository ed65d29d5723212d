"""``creditrisk``: the one command line, and the demo that runs the whole flow from nothing.

The outermost room: it assembles every package's sub-commands. Nothing imports it.
"""
