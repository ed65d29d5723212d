"""The replay tool: send a loan file's applications and outcomes to Kafka, follow decisions.

``core`` turns rows into application events and outcome messages and sends them; ``cli``
holds ``creditrisk produce`` and ``creditrisk decisions tail``. Imports ``stream`` (the
decision contract), ``training`` (reading a dataset) and below; only the CLI imports it.
"""
