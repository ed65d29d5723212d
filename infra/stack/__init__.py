"""The local stack: Kafka (KRaft, SASL/SCRAM over TLS, ACLs), Redis (ACL users), PostgreSQL
and Prometheus, started as this machine's own processes (``creditrisk stack up``)."""
