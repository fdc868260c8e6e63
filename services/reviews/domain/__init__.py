"""Pure rules of the reviews service: content checks, moderation routing, review lifecycle."""
