-- From model decision to final decision: named console users, the review queue, the
-- append-only audit of what people did, the final decisions with their outbox, and the
-- adverse-action notices.
--
-- The console connects as its own database role, creditrisk_console (granted below): it
-- may read the ledger, claim and release queue items, and INSERT audit rows, final
-- decisions and notices, but never UPDATE or DELETE them. The rows of review_actions,
-- final_decisions, final_decision_publications, adverse_action_notices and
-- login_attempts are also guarded by a trigger: no role, the owner included, can change
-- one; only the retention purge (the owner, `creditrisk ledger purge`) removes old ones.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'creditrisk_console') THEN
        CREATE ROLE creditrisk_console NOLOGIN;
    END IF;
END
$$;

CREATE TABLE console_users (
    username       text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
    display_name   text NOT NULL,
    role           text NOT NULL CHECK (role IN ('viewer', 'reviewer', 'approver', 'admin')),
    password_hash  text NOT NULL,                -- argon2id, never the password
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL
);

-- Every sign-in attempt on a known user name (an unknown name is not stored: it may be a
-- password typed into the wrong field).
CREATE TABLE login_attempts (
    attempt_id     bigserial PRIMARY KEY,
    username       text NOT NULL REFERENCES console_users (username),
    succeeded      boolean NOT NULL,
    attempted_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_user_idx ON login_attempts (username, attempted_at DESC);

-- One item per application a model referred for review; its work state (who holds it) is
-- the only thing that changes, and every change is also a review_actions row.
CREATE TABLE review_items (
    application_id text PRIMARY KEY,
    decision_id    uuid NOT NULL,
    customer_id    text NOT NULL,
    risk_grade     text NOT NULL,
    score          integer NOT NULL,
    entered_at     timestamptz NOT NULL,          -- the model's decided_at
    due_at         timestamptz NOT NULL,          -- entered_at + the service level
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'claimed', 'decided')),
    claimed_by     text REFERENCES console_users (username),
    claimed_at     timestamptz
);
CREATE INDEX review_items_queue_idx ON review_items (status, entered_at);

-- What people did, append-only: claims and releases, review decisions, and override
-- requests with their approval or rejection by a second person.
CREATE TABLE review_actions (
    action_id      bigserial PRIMARY KEY,
    application_id text NOT NULL,
    action         text NOT NULL CHECK (action IN ('claim', 'release', 'decide', 'override_request',
                                                   'override_approve', 'override_reject')),
    actor          text NOT NULL REFERENCES console_users (username),
    acted_at       timestamptz NOT NULL DEFAULT now(),
    from_decision  text CHECK (from_decision IN ('approve', 'review', 'decline')),
    to_decision    text CHECK (to_decision IN ('approve', 'decline')),
    reason_code    text,
    reason_text    text NOT NULL DEFAULT '',
    request_id     bigint REFERENCES review_actions (action_id)  -- the request an approval answers
);
CREATE INDEX review_actions_application_idx ON review_actions (application_id, action_id);
CREATE INDEX review_actions_actor_idx ON review_actions (actor, acted_at);
-- one answer (approval or rejection) per override request
CREATE UNIQUE INDEX review_actions_one_answer_idx ON review_actions (request_id)
    WHERE request_id IS NOT NULL;

-- The final decision of each application, append-only: revision 1 is the model's own
-- (approve/decline) or a reviewer's (review); an approved override adds the next revision.
-- `message` is exactly what goes to loan-final-decisions.
CREATE TABLE final_decisions (
    final_id       bigserial PRIMARY KEY,
    application_id text NOT NULL,
    revision       integer NOT NULL CHECK (revision >= 1),
    decision_id    uuid NOT NULL,
    model_decision text NOT NULL CHECK (model_decision IN ('approve', 'review', 'decline')),
    final_decision text NOT NULL CHECK (final_decision IN ('approve', 'decline')),
    decided_by     text NOT NULL,                 -- 'model' or a console user
    approved_by    text,                          -- the second person of an override
    reason_code    text,
    reason_text    text NOT NULL DEFAULT '',
    decided_at     timestamptz NOT NULL,
    message        jsonb NOT NULL,
    UNIQUE (application_id, revision)
);
CREATE INDEX final_decisions_decline_idx ON final_decisions (final_decision, decided_at);

-- The outbox's other half: a final decision is published when its row is here.
CREATE TABLE final_decision_publications (
    final_id       bigint PRIMARY KEY REFERENCES final_decisions (final_id),
    topic          text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset   bigint NOT NULL,
    published_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE adverse_action_notices (
    notice_id      bigserial PRIMARY KEY,
    application_id text NOT NULL,
    final_id       bigint NOT NULL REFERENCES final_decisions (final_id),
    produced_at    timestamptz NOT NULL DEFAULT now(),
    produced_by    text NOT NULL,                 -- 'ledger' or a console user
    reasons        jsonb NOT NULL,                -- the principal reasons as printed
    html           text NOT NULL,
    pdf            bytea NOT NULL
);
CREATE UNIQUE INDEX adverse_action_notices_final_idx ON adverse_action_notices (final_id);

CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('creditrisk.retention_purge', true) = 'on'
            AND pg_has_role(current_user, (SELECT tableowner FROM pg_tables
                                           WHERE tablename = TG_TABLE_NAME
                                             AND schemaname = TG_TABLE_SCHEMA), 'MEMBER') THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% rows are append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER review_actions_append_only BEFORE UPDATE OR DELETE ON review_actions
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER final_decisions_append_only BEFORE UPDATE OR DELETE ON final_decisions
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER final_decision_publications_append_only BEFORE UPDATE OR DELETE
    ON final_decision_publications FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER adverse_action_notices_append_only BEFORE UPDATE OR DELETE ON adverse_action_notices
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER login_attempts_append_only BEFORE UPDATE OR DELETE ON login_attempts
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();

GRANT SELECT ON decisions, loan_outcomes, console_users, login_attempts, review_items,
    review_actions, final_decisions, final_decision_publications, adverse_action_notices
    TO creditrisk_console;
GRANT INSERT ON login_attempts, review_actions, final_decisions, adverse_action_notices
    TO creditrisk_console;
GRANT UPDATE (status, claimed_by, claimed_at) ON review_items TO creditrisk_console;
GRANT USAGE ON SEQUENCE login_attempts_attempt_id_seq, review_actions_action_id_seq,
    final_decisions_final_id_seq, adverse_action_notices_notice_id_seq TO creditrisk_console;
