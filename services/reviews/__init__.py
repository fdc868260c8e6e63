"""Reviews service: survey pages, submissions, moderation, agent responses, the review stream."""
