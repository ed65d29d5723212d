-- The decision ledger: one row per decision with its lineage, and the loans' outcomes.

CREATE TABLE decisions (
    decision_id            uuid PRIMARY KEY,          -- UUIDv5(application id, model version)
    application_id         text NOT NULL,
    customer_id            text NOT NULL,
    decision               text NOT NULL CHECK (decision IN ('approve', 'review', 'decline')),
    probability_of_default double precision NOT NULL,
    score                  integer NOT NULL,
    risk_grade             text NOT NULL,
    reasons                jsonb NOT NULL,
    missing_features       jsonb NOT NULL,
    model_version          text NOT NULL,
    policy_version         text NOT NULL,
    submitted_at           timestamptz NOT NULL,
    decided_at             timestamptz NOT NULL,
    -- lineage: what the model saw (null when the worker's record was no longer in Redis)
    application            jsonb,
    features               jsonb,
    feature_age_seconds    jsonb,
    stale_features         jsonb,
    velocity               jsonb,
    lineage_complete       boolean NOT NULL,
    -- the console's look-ups, kept as columns so they can be indexed
    purpose                text,
    annual_inc             double precision,
    loan_amnt              double precision,
    -- where the decision was read
    source_topic           text NOT NULL,
    source_partition       integer NOT NULL,
    source_offset          bigint NOT NULL,
    recorded_at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX decisions_application_idx ON decisions (application_id);
CREATE INDEX decisions_customer_idx ON decisions (customer_id, decided_at DESC);
CREATE INDEX decisions_decided_at_idx ON decisions (decided_at);
CREATE INDEX decisions_similar_idx ON decisions (purpose, annual_inc);
CREATE INDEX decisions_filter_idx ON decisions (decision, risk_grade, decided_at DESC);
CREATE INDEX decisions_model_idx ON decisions (model_version, decided_at);

CREATE TABLE loan_outcomes (
    application_id   text PRIMARY KEY,
    loan_status      text NOT NULL,           -- as servicing reported it
    outcome          text NOT NULL CHECK (outcome IN ('bad', 'good', 'open', 'unknown')),
    as_of            date NOT NULL,
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX loan_outcomes_as_of_idx ON loan_outcomes (as_of);
