-- The console's Find page filters every decision in the ledger and lists the newest first:
-- by decision (decisions_filter_idx), customer, application, model version and day
-- (0001's indexes), by the application's categories (0002's GIN index), and by these two,
-- which a filter on the risk grade alone or on a score range needs.
CREATE INDEX decisions_grade_idx ON decisions (risk_grade, decided_at DESC);
CREATE INDEX decisions_score_idx ON decisions (score, decided_at DESC);
