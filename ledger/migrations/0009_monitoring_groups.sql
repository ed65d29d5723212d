-- Fair-lending monitoring: the group of each monitored attribute a decision's applicant falls
-- in, e.g. {"gender": "female", "age_band": "25-34"} ("unknown" where the event lacked a
-- usable value). Group labels only: the applicant's own value (a birth date, an age) never
-- reaches the ledger through this column. NULL when the decision was written without the
-- worker's record (no lineage: its groups are not known); {} when its model declares no
-- monitored attribute.

ALTER TABLE decisions ADD COLUMN monitoring_groups jsonb
    CHECK (monitoring_groups IS NULL OR jsonb_typeof(monitoring_groups) = 'object');

-- The console reads the new column as it reads every other column of decisions (0006 grants
-- SELECT on the whole table, which covers columns added later; said again here so the grant
-- of this column is visible where the column is made).
GRANT SELECT ON decisions TO creditrisk_console;
