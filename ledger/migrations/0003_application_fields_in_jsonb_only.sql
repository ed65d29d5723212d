-- The application's fields live in the `application` JSONB column only: the console groups
-- and filters by whichever fields the live model's card names (0002's GIN index serves
-- them), so the columns copied from one dataset's fields are dropped with their index.
DROP INDEX IF EXISTS decisions_similar_idx;
ALTER TABLE decisions DROP COLUMN IF EXISTS purpose;
ALTER TABLE decisions DROP COLUMN IF EXISTS annual_inc;
ALTER TABLE decisions DROP COLUMN IF EXISTS loan_amnt;
