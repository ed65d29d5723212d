"""The fault suite: real servers broken on purpose mid-stream (a broker killed, Redis
restarted, poison events, a stuck client), with lost and non-identical outcomes counted.

``injected_worker`` is the real worker with the two faults that cannot be caused from
outside forced in; only this suite runs it."""
