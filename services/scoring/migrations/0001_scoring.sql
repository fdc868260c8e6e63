-- The scoring service's own store: the roster facts it needs, participation (visibility),
-- counted review history, and each agent's current rating with its next instant of change.

CREATE TABLE IF NOT EXISTS agents (
    agent_id      text        PRIMARY KEY,
    office_id     text,
    member_since  date,                      -- NULL until the roster names the agent
    active        boolean     NOT NULL DEFAULT true,
    mode          text        NOT NULL DEFAULT 'opt_in_hidden'
        CHECK (mode IN ('opt_in_hidden', 'opt_in_public', 'opt_out')),
    mode_changed_at timestamptz
);

-- Transaction-survey reviews only (removal surveys never count). A withdrawal may arrive
-- before its publication: then the row exists with withdrawn_at set and no scores yet.
CREATE TABLE IF NOT EXISTS reviews (
    review_id     text        PRIMARY KEY,
    agent_id      text        NOT NULL,
    submitted_at  timestamptz,
    communication smallint,
    friendliness  smallint,
    professionalism smallint,
    area_knowledge smallint,
    overall       smallint,
    published_at  timestamptz,
    withdrawn_at  timestamptz
);
CREATE INDEX IF NOT EXISTS reviews_by_agent ON reviews (agent_id);

CREATE TABLE IF NOT EXISTS ratings (
    agent_id        text        PRIMARY KEY,
    policy_version  text        NOT NULL,
    computed_at     timestamptz NOT NULL,
    visibility      text        NOT NULL,
    stars           smallint    NOT NULL,
    status          text        NOT NULL,
    status_since    timestamptz,
    next_review_at  timestamptz,
    positive_reviews_3m integer NOT NULL,
    positive_reviews_6m integer NOT NULL,
    reviews_total   integer     NOT NULL,
    category_averages jsonb     NOT NULL,
    next_change_at  timestamptz,             -- when the scheduler must look again
    published       jsonb                    -- the last rating.updated.v1 sent, without as_of
);
CREATE INDEX IF NOT EXISTS ratings_due ON ratings (next_change_at) WHERE next_change_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ratings_ranking ON ratings
    ((CASE status WHEN 'gold' THEN 0 WHEN 'silver' THEN 1 ELSE 2 END), stars DESC,
     positive_reviews_3m DESC, agent_id)
    WHERE visibility = 'public';
