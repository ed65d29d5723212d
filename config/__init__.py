"""Process-wide configuration: the typed ``CREDITRISK_*`` settings every package reads.

The bottom layer: it imports nothing of ours; every other package may import it.
"""
