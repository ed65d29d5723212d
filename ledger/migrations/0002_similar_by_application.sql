-- Similar customers are grouped by whichever application fields the live model's card names
-- (serving.similar_by): the console matches them by JSONB containment on the stored
-- application (`application @> '{"field": "value"}'`), which this index serves.
CREATE INDEX decisions_application_gin_idx ON decisions USING gin (application jsonb_path_ops);
