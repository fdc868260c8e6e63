-- Every unsubscribe link ever mailed keeps working (AgentTracker): the first mail's link stays
-- in invitations.unsubscribe_hash, each later mail's (the reminder's) is added here.
CREATE TABLE IF NOT EXISTS unsubscribe_links (
    unsubscribe_hash text        PRIMARY KEY,
    invitation_id    text        NOT NULL REFERENCES invitations (invitation_id),
    created_at       timestamptz NOT NULL
);
