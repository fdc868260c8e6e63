-- The public review stream (reviews.public): each agent's participation mode, the reviews the
-- stream shows now, and reviews whose client asked to be erased.

CREATE TABLE IF NOT EXISTS participation (
    agent_id    text        PRIMARY KEY,
    mode        text        NOT NULL CHECK (mode IN ('opt_in_hidden', 'opt_in_public', 'opt_out')),
    changed_at  timestamptz NOT NULL
);

-- A row while the review is shown on reviews.public. Written only under the agent's
-- public-stream lock, and never by updating `reviews`: a change of visibility then takes no
-- review row lock, so it cannot deadlock with a moderation step that holds one (that is also
-- why there is no foreign key: its check would lock the review row).
CREATE TABLE IF NOT EXISTS public_reviews (
    review_id   text        PRIMARY KEY,
    agent_id    text        NOT NULL,
    shown_since timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS public_reviews_by_agent ON public_reviews (agent_id);

-- set when the client's erasure removed the comment and display name
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS erased_at timestamptz;
