"""Operations: the local stack (Kafka, Redis, Prometheus), service configs and the CLI.

The outermost layer: it may import every package; nothing but tests imports it.
"""
