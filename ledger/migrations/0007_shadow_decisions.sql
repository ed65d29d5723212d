-- Challengers' decisions, scored in the champion's shadow and never acted on: one row per
-- application and challenger version, with the champion's decision of the same application
-- beside it, so the comparison joins both models' decisions to the same loan outcomes.
-- A shadow decision never enters the review queue nor becomes a final decision.

CREATE TABLE shadow_decisions (
    decision_id            uuid PRIMARY KEY,          -- UUIDv5(application id, challenger version)
    application_id         text NOT NULL,
    decision               text NOT NULL CHECK (decision IN ('approve', 'review', 'decline')),
    probability_of_default double precision NOT NULL,
    score                  integer NOT NULL,
    risk_grade             text NOT NULL,
    reasons                jsonb NOT NULL,
    model_version          text NOT NULL,             -- the challenger's
    policy_version         text NOT NULL,
    decided_at             timestamptz NOT NULL,
    -- the champion's decision of the same application (its row is in decisions)
    champion_decision_id   uuid NOT NULL,
    champion_model_version text NOT NULL,
    champion_decision      text NOT NULL
        CHECK (champion_decision IN ('approve', 'review', 'decline')),
    -- where the shadow decision was read
    source_topic           text NOT NULL,
    source_partition       integer NOT NULL,
    source_offset          bigint NOT NULL,
    recorded_at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX shadow_decisions_pair_idx
    ON shadow_decisions (model_version, champion_model_version, decided_at);
CREATE INDEX shadow_decisions_application_idx ON shadow_decisions (application_id);

GRANT SELECT ON shadow_decisions TO creditrisk_console;
