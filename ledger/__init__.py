"""The decision ledger: PostgreSQL as the book of record, and back-testing on real outcomes.

``schema`` applies the numbered SQL migrations in ``migrations/``; ``writer`` consumes the
decisions and loan-outcomes topics into it (batched, at-least-once, idempotent on
``decision_id``); ``rows`` is the one mapping between a decision and its ledger row (the
writer and the console both use it); ``store`` holds the SQL the writer and the retention
command run; ``cards`` reads what the ledger needs from the model cards (each version's
portfolio, that portfolio's outcome lists, the card's test figures); ``backtest`` judges
each model version on what became of its own portfolio's loans, with confidence intervals.
Redis keeps only what the hot path and the console's quick look-ups need.
"""
