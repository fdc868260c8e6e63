"""The evidence behind docs/design.md §3.3 still holds: each fraud is caught by its signal and
few honest reviews are held."""

from __future__ import annotations

import random

from devtools.fraud_evidence import evaluate, generate


def test_the_signals_catch_their_frauds_and_hold_few_honest_reviews() -> None:
    cases, agent_ips = generate(random.Random(25))
    evaluate(cases, agent_ips)

    def caught(kind: str, outcome: str) -> float:
        of_kind = [c for c in cases if c.kind == kind]
        return sum(outcome in c.outcome for c in of_kind) / len(of_kind)

    assert caught("self: own domain", "refused: own_mail_domain") == 1
    assert caught("self: disposable", "refused: disposable_address") == 1
    assert caught("self: agent's address", "agent_address") == 1
    assert caught("self: shared reviewer", "flagged_contact") >= 0.9
    assert caught("abusive", "abusive_language") == 1
    assert caught("copied comment", "copied_comment") >= 2 / 3  # every copy after the first
    honest = [c for c in cases if c.kind == "honest"]
    assert sum(bool(c.outcome) for c in honest) / len(honest) <= 0.02
