"""From model decision to final decision: console users and roles, the review queue, the
override requests with their second-person approval, and the controlled reason codes.
Everything is in the ledger's PostgreSQL; every action is an append-only row naming its
user (``ledger/migrations/0006_review_and_final_decisions.sql``)."""
