"""Feature definitions, the Redis feature store and shared settings.

This is the bottom layer: ``training`` and ``stream`` import it; it imports neither.
"""
