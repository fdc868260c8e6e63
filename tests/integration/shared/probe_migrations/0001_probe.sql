CREATE TABLE probe_effects (
    lead_id text PRIMARY KEY,
    times   integer NOT NULL
);
