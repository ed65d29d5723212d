"""Operations: the local stack, the benchmarks and the fault suite, and the service configs.

- ``infra.stack``: Kafka, Redis, PostgreSQL and Prometheus on this machine (``creditrisk
  stack``), with their TLS, ACLs and secrets;
- ``infra.bench``: ``creditrisk bench``, every benchmark suite;
- ``infra.faults``: the fault-injection suite (real servers broken on purpose).

Config files for the services live beside them (``kafka/``, ``redis/``, ``prometheus/``,
``grafana/``). The outermost layer with ``cli``: it may import every package; only ``cli``
and tests import it.
"""
