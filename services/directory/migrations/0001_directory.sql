-- The directory's read model: only what the public streams carry (`mls.agents` for names and
-- offices, `ratings`, `reviews.public`). Rebuilt from offset 0 whenever this schema is new.

-- The roster facts a public page shows. The roster's email is not kept: no page shows it.
CREATE TABLE IF NOT EXISTS agents (
    agent_id   text        PRIMARY KEY,
    name       text        NOT NULL,
    office_id  text        NOT NULL,
    active     boolean     NOT NULL
);
CREATE INDEX IF NOT EXISTS agents_by_office ON agents (office_id);
CREATE INDEX IF NOT EXISTS agents_by_lower_name ON agents (lower(name) text_pattern_ops);

-- The latest rating per agent. Numbers are null unless visibility is public (the stream's
-- promise); the agent is shown only while visibility is public and the roster says active.
CREATE TABLE IF NOT EXISTS ratings (
    agent_id            text        PRIMARY KEY,
    as_of               timestamptz NOT NULL,
    visibility          text        NOT NULL CHECK (visibility IN ('public', 'hidden', 'opted_out')),
    policy_version      text        NOT NULL,
    stars               smallint,
    status              text        CHECK (status IN ('none', 'silver', 'gold')),
    status_rank         smallint,   -- gold 2, silver 1, none 0: the ranking's first key
    status_since        timestamptz,
    positive_reviews_3m integer,
    positive_reviews_6m integer,
    reviews_total       integer,
    category_averages   jsonb
);
-- the search order (status, stars, positive reviews in 3 months) among public agents
CREATE INDEX IF NOT EXISTS ratings_ranked ON ratings
    (status_rank DESC, stars DESC, positive_reviews_3m DESC) WHERE visibility = 'public';

-- Public reviews as `reviews.public` shows them now: a republication replaces the row, a
-- withdrawal deletes it.
CREATE TABLE IF NOT EXISTS reviews (
    review_id       text        PRIMARY KEY,
    agent_id        text        NOT NULL,
    survey          text        NOT NULL,
    submitted_at    timestamptz NOT NULL,
    published_at    timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    communication   smallint    NOT NULL,
    friendliness    smallint    NOT NULL,
    professionalism smallint    NOT NULL,
    area_knowledge  smallint    NOT NULL,
    overall         smallint    NOT NULL,
    positive        boolean     NOT NULL,
    comment         text        NOT NULL,
    display_name    text,
    agent_response  text
);
CREATE INDEX IF NOT EXISTS reviews_by_agent ON reviews (agent_id, submitted_at DESC, review_id);

-- One row per rebuild of this schema: its absence at start means the schema is new, so the
-- consumer group's offsets are moved to the beginning of the three topics first.
CREATE TABLE IF NOT EXISTS rebuilds (
    group_id    text        NOT NULL,
    started_at  timestamptz NOT NULL
);
