"""The four services: invitations, reviews, scoring, removals."""
