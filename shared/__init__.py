"""Plumbing shared by the four services: contracts, CloudEvents, inbox/outbox, clock, mail, auth, HTTP."""
