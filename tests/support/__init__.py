"""Helpers for integration tests against the real local stack."""
