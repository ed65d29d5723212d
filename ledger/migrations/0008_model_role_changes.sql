-- Who changed which model's role, when, and why: challengers set and cleared, promotions
-- (through the gate or by override), refused promotions and rollbacks. Append-only, like
-- the review audit of 0006: refuse_audit_change() refuses every UPDATE and DELETE (only the
-- owner's retention purge may delete). `criteria` holds the promotion gate's criteria as
-- they were evaluated: [{"name", "value", "limit", "passed"}, ...].

CREATE TABLE model_role_changes (
    change_id         bigserial PRIMARY KEY,
    changed_at        timestamptz NOT NULL DEFAULT now(),
    changed_by        text NOT NULL CHECK (changed_by <> ''),
    action            text NOT NULL CHECK (action IN ('challenger_set', 'challenger_cleared',
                                                      'promoted', 'promoted_by_override',
                                                      'promotion_refused', 'rolled_back')),
    model_version     text NOT NULL,
    previous_champion text,
    percent           double precision CHECK (percent BETWEEN 0 AND 100),
    criteria          jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(criteria) = 'array'),
    reason            text NOT NULL DEFAULT '',
    -- a promotion past the gate and a rollback say why, in more than a word
    CHECK (action NOT IN ('promoted_by_override', 'rolled_back') OR length(reason) >= 10),
    CHECK (action <> 'challenger_set' OR percent IS NOT NULL)
);
CREATE INDEX model_role_changes_version_idx ON model_role_changes (model_version, change_id);

CREATE TRIGGER model_role_changes_append_only BEFORE UPDATE OR DELETE ON model_role_changes
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();

GRANT SELECT ON model_role_changes TO creditrisk_console;
