-- Outcomes are kept per portfolio: the dataset of the models that decide its loans (the model
-- card's dataset.name). Two portfolios may use the same application ids, and one's outcome
-- must never replace the other's, so the key is (portfolio, application id). An outcome that
-- names no portfolio, and every outcome written before this migration, has the portfolio ''
-- and counts for whichever model decided the application (as all outcomes did before).
ALTER TABLE loan_outcomes ADD COLUMN portfolio text NOT NULL DEFAULT '';
ALTER TABLE loan_outcomes ALTER COLUMN portfolio DROP DEFAULT;
ALTER TABLE loan_outcomes DROP CONSTRAINT loan_outcomes_pkey;
ALTER TABLE loan_outcomes ADD PRIMARY KEY (portfolio, application_id);
CREATE INDEX loan_outcomes_application_idx ON loan_outcomes (application_id);
