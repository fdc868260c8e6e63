"""Scoring service: stars and status per agent."""
