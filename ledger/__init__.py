"""The decision ledger: PostgreSQL as the book of record, and back-testing on real outcomes.

``schema`` applies the numbered SQL migrations in ``migrations/``; ``writer`` consumes the
decisions and loan-outcomes topics into it (batched, at-least-once, idempotent on
``decision_id``); ``store`` holds the SQL the writer, the retention command and the
console run; ``backtest`` judges each model version on what became of its decisions.
Redis keeps only what the hot path and the console's quick look-ups need.
"""
