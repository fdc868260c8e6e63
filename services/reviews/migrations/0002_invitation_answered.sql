-- When the invitation was answered, on the invitation row itself: a submission locks that row
-- and reads it in one statement (FOR UPDATE re-reads the row a concurrent submission just
-- updated; a subquery on reviews would still see the statement's older snapshot).
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS answered_at timestamptz;

UPDATE invitations i SET answered_at = r.submitted_at
  FROM reviews r
 WHERE r.invitation_id = i.invitation_id AND i.answered_at IS NULL;
