-- HAR compliance is per client: a contact request lists the clients still missing, by their
-- number in the MLS closing's list (1-based). 0 stands for "the MLS listed no client": any
-- contact answers it, which is also what requests made before this migration keep meaning.
ALTER TABLE contact_requests ADD COLUMN IF NOT EXISTS clients_missing integer[] NOT NULL
    DEFAULT '{0}';
ALTER TABLE contact_requests ADD COLUMN IF NOT EXISTS clients_listed integer NOT NULL DEFAULT 0;

-- Every unsubscribe link ever mailed keeps working (AgentTracker): the first mail's link stays
-- in invitations.unsubscribe_hash, each later mail's (the reminder's) is added here.
CREATE TABLE IF NOT EXISTS unsubscribe_links (
    unsubscribe_hash text        PRIMARY KEY,
    invitation_id    text        NOT NULL REFERENCES invitations (invitation_id),
    created_at       timestamptz NOT NULL
);
