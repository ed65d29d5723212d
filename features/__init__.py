"""Feature definitions, the Redis feature store and its materialization.

``training`` and ``stream`` import it; it imports only ``config``.
"""
