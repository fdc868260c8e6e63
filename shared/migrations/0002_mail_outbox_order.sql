-- The mail relay takes due rows in (next_attempt_at, id) order: index both, so a backlog whose
-- rows share one next_attempt_at (a batch's transaction time) is not sorted on every round.
CREATE INDEX IF NOT EXISTS mail_outbox_due_in_order ON mail_outbox (next_attempt_at, id)
    WHERE sent_at IS NULL;
DROP INDEX IF EXISTS mail_outbox_due;
